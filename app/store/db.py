"""Opening the chat database: location, pragmas, migrations, and a corrupt file set aside.

WAL with ``synchronous=NORMAL``: a commit survives the app crashing or being
killed (the WAL is on disk before the call returns); only a power cut or OS
crash may lose the last commits, never corrupt the file. FULL would also
survive power loss at the price of an fsync per commit — too slow for
writing a streaming reply every second on a laptop disk.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from pathlib import Path

from app.errors import StoreError
from app.store.migrations import Foreign, NotOurs, check_ours, migrate

DB_NAME = "basechat.db"


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=True)
    db.row_factory = sqlite3.Row
    return db


def _configure(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")


def _open_checked(path: Path) -> sqlite3.Connection:
    """Checked before anything is written, so a foreign or newer file is refused unchanged."""
    db = connect(path)
    try:
        check_ours(db)
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise Corrupt("SQLite's quick check failed")
        _configure(db)
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


class Corrupt(Exception):
    """SQLite itself says the file is damaged or is no database."""


_CORRUPT_CODES = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
_CORRUPT_WORDS = ("file is not a database", "malformed", "file is encrypted")


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Only what SQLite reports as damage counts: a busy or locked database, a read-only folder,
    a newer schema or another program's tables are not corruption and are never moved aside."""
    if isinstance(exc, sqlite3.OperationalError) and not any(w in str(exc) for w in _CORRUPT_WORDS):
        return False
    code = getattr(exc, "sqlite_errorname", "")
    return code in _CORRUPT_CODES or any(word in str(exc) for word in _CORRUPT_WORDS)


def open_database(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """The migrated database, and a notice if a damaged file had to be set aside. Several
    Basechat processes starting at once take turns here (a lock file beside the database)."""
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(path) + ".lock", timeout=60):
            return _open_or_set_aside(path)
    except Timeout:
        raise StoreError(
            f"The chat history {path} is held by another Basechat that does not let go."
        ) from None
    except OSError as exc:
        raise StoreError(f"Cannot open the chat history in {path.parent}: {exc.strerror or exc}.") from None


def _open_or_set_aside(path: Path) -> tuple[sqlite3.Connection, str | None]:
    try:
        return _open_checked(path), None
    except NotOurs as exc:
        raise StoreError(f"The chat history {path} {exc}; it was left untouched.") from None
    except (Corrupt, Foreign) as exc:
        reason = str(exc)
    except sqlite3.DatabaseError as exc:
        if not _is_corruption(exc):
            raise StoreError(f"Cannot open the chat history {path}: {exc}.") from None
        reason = str(exc)
    aside = _set_aside(path)
    notice = (
        f"The chat history file was damaged ({reason}); it was kept as {aside.name} and a new one started."
    )
    return _open_checked(path), notice


def _set_aside(path: Path) -> Path:
    """Move the damaged file (and its journal) to a name no other file has."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.broken-{stamp}-{os.getpid()}-{secrets.token_hex(3)}")
    path.replace(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(aside.with_name(aside.name + suffix))
    return aside
