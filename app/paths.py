"""Where Basechat keeps its files and finds its own resources."""

from __future__ import annotations

import os
from pathlib import Path

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


def _bundled_root() -> Path:
    """``resources/`` and ``models/`` sit in the source tree, or inside the wheel."""
    package = Path(__file__).resolve().parent
    bundled = package / "_bundled"
    return bundled if bundled.is_dir() else package.parent


def resources_dir() -> Path:
    return _bundled_root() / "resources"


def catalog_dir() -> Path:
    return _bundled_root() / "models"
