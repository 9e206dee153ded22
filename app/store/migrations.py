"""The chat database's schema, as an ordered list of forward migrations.

``PRAGMA user_version`` records how many have run; opening a database runs
the rest, each with its version bump in one transaction. Never edit a shipped migration: add one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_INITIAL = """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            template TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            model TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            alternative INTEGER NOT NULL DEFAULT 0,
            chosen INTEGER NOT NULL DEFAULT 1,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            text TEXT NOT NULL,
            raw TEXT,
            tokens BLOB,
            status TEXT NOT NULL DEFAULT 'done'
                CHECK (status IN ('done', 'streaming', 'interrupted')),
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_s REAL,
            tokens_per_s REAL,
            model TEXT,
            created_at REAL NOT NULL,
            UNIQUE (conversation_id, position, alternative)
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, position);
        CREATE INDEX conversations_by_update ON conversations (updated_at DESC);
"""


_FULL_TEXT_SEARCH = """
        CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id');
        INSERT INTO messages_fts(rowid, text) SELECT id, text FROM messages;
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
        END;
"""


def has_fts5(db: sqlite3.Connection) -> bool:
    options = {row[0] for row in db.execute("PRAGMA compile_options")}
    return "ENABLE_FTS5" in options


def _full_text_search(db: sqlite3.Connection) -> str:
    """FTS5 index over message text, kept in step by triggers; none where SQLite lacks FTS5."""
    return _FULL_TEXT_SEARCH if has_fts5(db) else ""


# A conversation becomes a tree: every message names its parent, and ``chosen`` marks one child
# per parent (the path shown). Today's thread becomes the chosen path: each message's parent is
# the chosen message one position up, so alternatives at a position become siblings.
_TREE = """
        ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE;
        ALTER TABLE messages ADD COLUMN probs BLOB;
        UPDATE messages SET parent_id = (
            SELECT p.id FROM messages p WHERE p.conversation_id = messages.conversation_id
            AND p.position = messages.position - 1 AND p.chosen = 1
        ) WHERE position > 0;
        CREATE INDEX messages_by_parent ON messages (conversation_id, parent_id);
        ALTER TABLE conversations ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'
            CHECK (kind IN ('chat', 'notebook'));
"""


# The tree replaced the list: parent/chosen say where a message hangs, so the list's
# ``alternative`` column and its UNIQUE (conversation_id, position, alternative) go. SQLite drops a
# column in a constraint only by rebuilding the table (foreign keys are off while it runs).
_WITHOUT_ALTERNATIVE = """
        CREATE TABLE messages_tree (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            chosen INTEGER NOT NULL DEFAULT 1,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            text TEXT NOT NULL,
            raw TEXT,
            tokens BLOB,
            status TEXT NOT NULL DEFAULT 'done'
                CHECK (status IN ('done', 'streaming', 'interrupted')),
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_s REAL,
            tokens_per_s REAL,
            model TEXT,
            created_at REAL NOT NULL,
            probs BLOB
        );
        INSERT INTO messages_tree (id, conversation_id, parent_id, position, chosen, role, text, raw,
            tokens, status, finish_reason, prompt_tokens, completion_tokens, ttft_s, tokens_per_s, model,
            created_at, probs)
        SELECT id, conversation_id, parent_id, position, chosen, role, text, raw, tokens, status,
            finish_reason, prompt_tokens, completion_tokens, ttft_s, tokens_per_s, model, created_at, probs
        FROM messages;
        DROP TABLE messages;
        ALTER TABLE messages_tree RENAME TO messages;
        CREATE INDEX messages_by_conversation ON messages (conversation_id, position);
        CREATE INDEX messages_by_parent ON messages (conversation_id, parent_id);
"""


def _without_alternative(db: sqlite3.Connection) -> str:
    """The rebuild, and the full-text triggers again (they went with the old table)."""
    triggers = _FULL_TEXT_SEARCH.split("CREATE TRIGGER", 1)[1] if has_fts5(db) else ""
    return _WITHOUT_ALTERNATIVE + (f"CREATE TRIGGER{triggers}" if triggers else "")


# A message's children by their parent alone: SQLite's foreign-key cascade and "does it have
# children" look them up this way, and without this index each lookup read the whole history.
_PARENT_INDEX = "CREATE INDEX messages_by_parent_id ON messages (parent_id);"

# A group chat's replies name their speaker (a member's name); NULL: the frame's one character.
_SPEAKER = "ALTER TABLE messages ADD COLUMN speaker TEXT;"

MIGRATIONS: list[Callable[[sqlite3.Connection], str]] = [
    lambda _db: _INITIAL, _full_text_search, lambda _db: _TREE, _without_alternative,
    lambda _db: _PARENT_INDEX, lambda _db: _SPEAKER,
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


class NotOurs(Exception):
    """A database from a newer Basechat: this one must not change it."""


class Foreign(Exception):
    """Another program's database where the history should be: kept aside whole, never changed."""


def check_ours(db: sqlite3.Connection) -> None:
    """Refuse a database from a newer Basechat or from another program."""
    version = _version(db)
    if version > SCHEMA_VERSION:
        raise NotOurs(f"was written by a newer Basechat (schema {version}; this one knows {SCHEMA_VERSION})")
    if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise Foreign("it is some other program's database")


def _version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite3.Connection) -> None:
    """Run the migrations not yet run, under SQLite's write lock, re-reading the version inside it
    (another process may have just migrated); all of them or none. Foreign keys are off meanwhile
    (a table rebuild would otherwise cascade) and checked before they are on again."""
    if _version(db) == SCHEMA_VERSION:
        return
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            _run_missing(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA foreign_keys = ON")


def _run_missing(db: sqlite3.Connection) -> None:
    version = _version(db)
    if version > SCHEMA_VERSION:
        raise NotOurs(f"was written by a newer Basechat (schema {version})")
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in _statements(step(db)):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
    if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise sqlite3.DatabaseError("a message hangs from one that is not there")


def _statements(script: str) -> list[str]:
    """A migration script as single statements (a trigger's body keeps its own semicolons), so they
    run inside the caller's transaction: ``executescript`` would commit first."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.strip(" ;\n")]
