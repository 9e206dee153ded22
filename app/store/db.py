"""Opening the chat database: location, pragmas, migrations, and a corrupt file set aside.

WAL with ``synchronous=NORMAL``: a commit survives the app crashing or being
killed (the WAL is on disk before the call returns); only a power cut or OS
crash may lose the last commits, never corrupt the file. FULL would also
survive power loss at the price of an fsync per commit — too slow for
writing a streaming reply every second on a laptop disk.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.store.migrations import check_ours, migrate

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
    """Checked before anything is written, so a foreign file is set aside unchanged."""
    db = connect(path)
    try:
        check_ours(db)
        db.execute("PRAGMA quick_check").fetchone()
        _configure(db)
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def open_database(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """The migrated database, and a notice if a broken file had to be set aside."""
    try:
        return _open_checked(path), None
    except sqlite3.DatabaseError as exc:
        aside = _set_aside(path)
        notice = (
            f"The chat history file was unreadable ({exc}); "
            f"it was kept as {aside.name} and a new one started."
        )
        return _open_checked(path), notice


def _set_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    path.replace(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(aside.with_name(aside.name + suffix))
    return aside
