"""Downloading catalog models from the Hugging Face Hub, resumably and verified.

Built on huggingface_hub's own URL, metadata and HTTP-session helpers, not a
second HTTP stack. The library itself resumes only within one call, deletes
its partial file on failure and checks only the size of a fresh download, so
Basechat keeps its own ``.part`` file (resumed with a Range request after an
interruption or a restart) and checks the sha256 before the file is used.

Files live in Basechat's data folder, not the shared Hub cache: that cache
cannot resume across restarts, and a person managing disk space sees and
removes one file per model in the model manager. The price: a file another
tool already downloaded is fetched again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, get_hf_file_metadata, get_session, hf_hub_url
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import build_hf_headers

from app.errors import BasechatError
from app.models.catalog import CatalogEntry
from app.paths import write_atomically

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
CHUNK = 1 << 18
RETRIES = 3
GIB = 1024**3


class DownloadError(BasechatError):
    """The download failed; a partial file, if any, is kept for the next attempt."""


class DownloadCancelled(BasechatError):
    """Stopped on request; the partial file stays so the download can resume."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    speed_bps: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


def hub_endpoint() -> str | None:
    """Read at call time (the library reads HF_ENDPOINT once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def _remote(entry: CatalogEntry) -> tuple[str, int, str]:
    """The download URL, exact size and expected sha256, or a one-line reason why not."""
    url = hf_hub_url(entry.repo, entry.file, endpoint=hub_endpoint())
    try:
        meta = get_hf_file_metadata(url, timeout=CONNECT_TIMEOUT_S, endpoint=hub_endpoint())
    except (RepositoryNotFoundError, EntryNotFoundError):
        raise DownloadError(f"{entry.file} is not on the Hub at {entry.repo} (404).") from None
    except HfHubHTTPError as exc:
        raise DownloadError(f"The Hub refused the request: {_first_line(exc)}") from None
    except (httpx2.HTTPError, OSError) as exc:
        raise DownloadError(
            f"Cannot reach the Hugging Face Hub ({_reason(exc)}). Check the connection."
        ) from None
    if not meta.size:
        raise DownloadError(f"The Hub did not say how large {entry.file} is.")
    return meta.location, meta.size, entry.sha256 or hub_sha256(entry)


def hub_sha256(entry: CatalogEntry) -> str:
    try:
        info = HfApi(endpoint=hub_endpoint()).model_info(
            entry.repo, files_metadata=True, timeout=CONNECT_TIMEOUT_S
        )
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
        raise DownloadError(f"Cannot read the file's checksum from the Hub ({_reason(exc)}).") from None
    for sibling in info.siblings or []:
        if sibling.rfilename == entry.file and sibling.lfs is not None:
            return sibling.lfs.sha256
    raise DownloadError(f"The Hub lists no checksum for {entry.file}; refusing an unverifiable file.")


def _reason(exc: BaseException) -> str:
    return type(exc).__name__ if not str(exc) else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_disk_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError(
            f"Not enough disk space: the download needs {needed / GIB:.2f} GB more "
            f"and {free / GIB:.2f} GB is free in {folder}."
        )


def download(
    entry: CatalogEntry,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Fetch ``entry`` into the models folder; resumes a ``.part`` left by an earlier attempt."""
    cancel = cancel or threading.Event()
    target = entry.local_path
    part = target.with_name(target.name + ".part")
    url, size, sha256 = _remote(entry)
    _forget_stale_part(part, size, sha256)
    check_disk_space(target.parent, size - _size(part))
    for attempt in range(RETRIES):
        try:
            _fetch(url, part, size, progress, cancel)
            break
        except (httpx2.TransportError, OSError) as exc:
            if attempt == RETRIES - 1:
                done = _size(part) / 1e6
                raise DownloadError(
                    f"The download was interrupted ({_reason(exc)}) after {done:.0f} MB; "
                    "run it again to resume."
                ) from None
    _verify_and_install(part, target, sha256)
    return target


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _forget_stale_part(part: Path, size: int, sha256: str) -> None:
    """A partial file is resumed only if it belongs to the same remote file."""
    stamp = part.with_name(part.name + ".json")
    record = {"size": size, "sha256": sha256}
    try:
        same = json.loads(stamp.read_text()) == record
    except (OSError, ValueError):
        same = False
    if not same or _size(part) > size:
        part.unlink(missing_ok=True)
    write_atomically(stamp, json.dumps(record))


def _fetch(url: str, part: Path, size: int, progress, cancel: threading.Event) -> None:
    start = _size(part)
    if start >= size:
        return
    headers = {**build_hf_headers(), "Range": f"bytes={start}-", "Accept-Encoding": "identity"}
    timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
        if response.status_code == 200:  # the server ignored Range: start over
            start = 0
        elif response.status_code != 206:
            raise DownloadError(f"The download server answered {response.status_code}.")
        with part.open("r+b" if start else "wb") as out:
            out.seek(start)
            out.truncate()
            _copy(response, out, start, size, progress, cancel)


def _copy(response, out, done: int, size: int, progress, cancel: threading.Event) -> None:
    meter = _Meter(done, size, progress)
    for chunk in response.iter_bytes(CHUNK):
        if cancel.is_set():
            out.flush()
            raise DownloadCancelled("Download cancelled; it will resume where it stopped.")
        out.write(chunk)
        done += len(chunk)
        meter.update(done)
    meter.update(done, force=True)


class _Meter:
    """Progress events, at most ten a second: bytes, total, speed and time left."""

    def __init__(self, done: int, total: int, callback) -> None:
        self.callback, self.total = callback, total
        self.started, self.first, self.last = time.monotonic(), done, 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.callback is None or (not force and now - self.last < 0.1):
            return
        self.last = now
        speed = (done - self.first) / max(now - self.started, 1e-6)
        eta = (self.total - done) / speed if speed > 0 else None
        self.callback(Progress(done, self.total, speed, eta))


def _verify_and_install(part: Path, target: Path, sha256: str) -> None:
    if file_sha256(part) != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(f"{target.name} failed verification (sha256 mismatch) and was removed.")
    part.replace(target)
    part.with_name(part.name + ".json").unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
