"""Where Basechat keeps its files, how it writes them, and where it finds its own resources."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import psutil
from platformdirs import user_data_dir

from app.errors import BasechatError

APP_NAME = "Basechat"
DATA_DIR_ENV = "BASECHAT_DATA_DIR"


class DataFolderError(BasechatError):
    """The data folder cannot be used (it is a file, or cannot be created)."""


def data_dir() -> Path:
    """The user's Basechat folder; ``BASECHAT_DATA_DIR`` overrides it so tests stay out."""
    override = os.environ.get(DATA_DIR_ENV)
    path = (
        Path(override).expanduser().resolve() if override else Path(user_data_dir(APP_NAME, appauthor=False))
    )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataFolderError(f"The data folder {path} is a file, not a folder.") from None
    except OSError as exc:
        raise DataFolderError(f"Cannot create the data folder {path}: {exc.strerror or exc}.") from None
    return path


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_plain_name(name: str) -> bool:
    """A name that stays inside its folder: no separator, no '..', not hidden, not empty. Every
    file name a data file holds (a template, a model in the catalog) is checked with this."""
    return bool(name.strip()) and not name.startswith(".") and not set(name) & {"/", "\\", "\0", ":"}


def _bundled_root() -> Path:
    """``resources/`` and ``models/`` sit in the source tree, or inside the wheel."""
    package = Path(__file__).resolve().parent
    bundled = package / "_bundled"
    return bundled if bundled.is_dir() else package.parent


def resources_dir() -> Path:
    return _bundled_root() / "resources"


def catalog_dir() -> Path:
    return _bundled_root() / "models"


# ``.NAME.PID.THREAD.tmp``: a file being written, beside the one it will replace.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.\d+\.tmp")


def write_atomically(path: Path, data: bytes | str) -> None:
    """Write a whole file or nothing: the bytes go to a temporary file in the same folder, are
    flushed to the disk, and then replace the old file by one rename. A write that fails (a full
    disk, a file-size limit) leaves the old file as it was and no temporary file behind; one cut
    short by a killed process is removed later by ``remove_leftovers``."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    path = path.resolve() if path.is_symlink() else path  # the file a link names, not the link
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def leftovers(folder: Path) -> list[Path]:
    """Temporary files in ``folder`` that ``write_atomically`` started, by any process."""
    try:
        return [p for p in folder.iterdir() if _TEMPORARY.fullmatch(p.name)]
    except OSError:
        return []


def remove_leftovers(folder: Path) -> int:
    """Remove the temporary files of processes that are gone (killed mid-write); a live
    process's are its writes in progress and stay. Returns the bytes freed."""
    freed = 0
    for path in leftovers(folder):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or psutil.pid_exists(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            size = path.stat().st_size
            path.unlink()
            freed += size
    return freed


def sweep_data_folder() -> int:
    """At start: the temporary files killed processes left in the data folder and the folders
    Basechat writes in it (templates, avatars, models; the KV store sweeps its own)."""
    root = data_dir()
    return sum(
        remove_leftovers(folder) for folder in (root, root / "templates", root / "avatars", root / "models")
    )
