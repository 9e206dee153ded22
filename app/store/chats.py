"""Chat history: conversations, their messages, and regenerated alternatives.

Each position in a conversation holds one or more alternatives (a reply and
its regenerations); exactly one is chosen and forms the visible thread.
Editing a user message and resending *drops* everything after it (as in
LM Studio and GPT4All): the thread stays a simple list, and the edit, like
every change here, is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import InputError
from app.paths import data_dir
from app.store.db import DB_NAME, open_database
from app.store.migrations import has_fts5


@dataclass(frozen=True)
class StoredMessage:
    id: int
    position: int
    alternative: int
    alternatives: int
    role: str
    text: str
    status: str
    created_at: float
    raw: str | None = None
    tokens: tuple[int, ...] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    model: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: float
    updated_at: float
    template: str
    settings: dict
    model: str
    messages: list[StoredMessage] = field(default_factory=list)


def title_from(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def pack_tokens(tokens: tuple[int, ...] | list[int] | None) -> bytes | None:
    return None if tokens is None else array("i", tokens).tobytes()


def unpack_tokens(blob: bytes | None) -> tuple[int, ...] | None:
    if blob is None:
        return None
    values = array("i")
    values.frombytes(blob)
    return tuple(values)


class ChatStore:
    """The SQLite chat history. One connection per thread, opened on first use there."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / DB_NAME
        self._local = threading.local()
        db, self.notice = open_database(self.path)
        self._local.db = db
        self.fts = has_fts5(db)
        self._mark_interrupted()

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_database(self.path)[0]
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _mark_interrupted(self) -> None:
        """A reply still 'streaming' when the store opens was cut off by a crash or kill."""
        self.db.execute("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'")

    # -- conversations ---------------------------------------------------------

    def create_conversation(
        self, title: str = "New chat", template: str = "chat", settings: dict | None = None,
        model: str = "",
    ) -> int:  # fmt: skip
        now = time.time()
        cursor = self.db.execute(
            "INSERT INTO conversations (title, created_at, updated_at, template, settings, model)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (title, now, now, template, json.dumps(settings or {}), model),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def list_conversations(self) -> list[Conversation]:
        rows = self.db.execute("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC")
        return [_conversation(row) for row in rows]

    def get(self, conversation_id: int) -> Conversation:
        row = self.db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise InputError(f"No conversation {conversation_id}.")
        return _conversation(row, self._thread(conversation_id))

    def _thread(self, conversation_id: int) -> list[StoredMessage]:
        rows = self.db.execute(
            "SELECT m.*, (SELECT count(*) FROM messages a WHERE a.conversation_id = m.conversation_id"
            " AND a.position = m.position) AS alternatives FROM messages m"
            " WHERE m.conversation_id = ? AND m.chosen = 1 ORDER BY m.position",
            (conversation_id,),
        )
        return [_message(row) for row in rows]

    def alternatives(self, conversation_id: int, position: int) -> list[StoredMessage]:
        rows = self.db.execute(
            "SELECT *, (SELECT count(*) FROM messages a WHERE a.conversation_id = ?"
            " AND a.position = ?) AS alternatives FROM messages"
            " WHERE conversation_id = ? AND position = ? ORDER BY alternative",
            (conversation_id, position, conversation_id, position),
        )
        return [_message(row) for row in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        if not title.strip():
            raise InputError("A conversation needs a title.")
        self._update_conversation(conversation_id, title=title.strip())

    def settings(self, conversation_id: int) -> dict:
        """Only the settings in force, without reading the messages."""
        row = self.db.execute(
            "SELECT settings FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise InputError(f"No conversation {conversation_id}.")
        return json.loads(row[0] or "{}")

    def merge_settings(self, conversation_id: int, items: dict, template: str | None = None) -> None:
        """Replace some keys of a conversation's settings (and its template name), atomically."""
        with self._transaction():
            values: dict = {"settings": {**self.settings(conversation_id), **items}}
            if template is not None:
                values["template"] = template
            self.update_settings(conversation_id, **values)

    def update_settings(self, conversation_id: int, **values) -> None:
        """template, settings (dict) or model in force for this conversation."""
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"])
        self._update_conversation(conversation_id, **values)

    def _update_conversation(self, conversation_id: int, **values) -> None:
        allowed = {"title", "template", "settings", "model"}
        assert set(values) <= allowed
        sets = ", ".join(f"{key} = ?" for key in values)
        cursor = self.db.execute(
            f"UPDATE conversations SET {sets}, updated_at = ? WHERE id = ?",
            (*values.values(), time.time(), conversation_id),
        )
        if cursor.rowcount == 0:
            raise InputError(f"No conversation {conversation_id}.")

    def delete(self, conversation_id: int) -> None:
        cursor = self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        if cursor.rowcount == 0:
            raise InputError(f"No conversation {conversation_id}.")

    # -- messages --------------------------------------------------------------

    def add_user_message(self, conversation_id: int, text: str) -> int:
        """Committed before generation starts, so a crash never loses what was typed."""
        with self._transaction() as db:
            position = self._next_position(db, conversation_id)
            message_id = self._insert(db, conversation_id, position, 0, "user", text, "done")
            if position == 0:
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = 'New chat'",
                    (title_from(text), conversation_id),
                )
        return message_id

    def begin_reply(self, conversation_id: int, model: str = "", position: int | None = None) -> int:
        """A new assistant message, 'streaming'; at ``position`` it is a regenerated alternative."""
        with self._transaction() as db:
            if position is None:
                position, alternative = self._next_position(db, conversation_id), 0
            else:
                alternative = db.execute(
                    "SELECT coalesce(max(alternative) + 1, 0) FROM messages"
                    " WHERE conversation_id = ? AND position = ?",
                    (conversation_id, position),
                ).fetchone()[0]
                db.execute(
                    "UPDATE messages SET chosen = 0 WHERE conversation_id = ? AND position = ?",
                    (conversation_id, position),
                )
            return self._insert(
                db, conversation_id, position, alternative, "assistant", "", "streaming", model
            )

    def save_partial(self, message_id: int, text: str) -> None:
        self.db.execute("UPDATE messages SET text = ? WHERE id = ?", (text, message_id))

    def finish_reply(
        self, message_id: int, text: str, *, raw: str | None = None, tokens=None,
        finish_reason: str = "stop", prompt_tokens: int | None = None,
        completion_tokens: int | None = None, ttft_s: float | None = None,
        tokens_per_s: float | None = None,
    ) -> None:  # fmt: skip
        # A reply the engine lost mid-way (a server died) is kept, marked like one cut by a crash.
        status = "interrupted" if finish_reason == "interrupted" else "done"
        self.db.execute(
            "UPDATE messages SET text = ?, raw = ?, tokens = ?, status = ?, finish_reason = ?,"
            " prompt_tokens = ?, completion_tokens = ?, ttft_s = ?, tokens_per_s = ? WHERE id = ?",
            (text, raw, pack_tokens(tokens), status, finish_reason, prompt_tokens, completion_tokens,
             ttft_s, tokens_per_s, message_id),
        )  # fmt: skip

    def choose_alternative(self, conversation_id: int, position: int, alternative: int) -> None:
        with self._transaction() as db:
            found = db.execute(
                "SELECT 1 FROM messages WHERE conversation_id = ? AND position = ? AND alternative = ?",
                (conversation_id, position, alternative),
            ).fetchone()
            if not found:
                raise InputError(f"No alternative {alternative + 1} at that message.")
            db.execute(
                "UPDATE messages SET chosen = (alternative = ?) WHERE conversation_id = ? AND position = ?",
                (alternative, conversation_id, position),
            )

    def edit_user_message(self, conversation_id: int, position: int, text: str) -> None:
        """New text for a user turn; every later turn (the old branch) is dropped."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, role FROM messages WHERE conversation_id = ? AND position = ? AND chosen = 1",
                (conversation_id, position),
            ).fetchone()
            if row is None or row["role"] != "user":
                raise InputError("Only a user message can be edited.")
            db.execute("UPDATE messages SET text = ? WHERE id = ?", (text, row["id"]))
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position > ?",
                (conversation_id, position),
            )

    def trim_last_reply(self, conversation_id: int, shown: str) -> None:
        """Stop keeps what the person saw: text that arrived after Stop was pressed is dropped
        (with the token ids, which no longer spell the text)."""
        row = self.db.execute(
            "SELECT id, text FROM messages WHERE conversation_id = ? AND chosen = 1 ORDER BY position DESC",
            (conversation_id,),
        ).fetchone()
        if row and row["text"] != shown and row["text"].startswith(shown):
            self.db.execute("UPDATE messages SET text = ?, raw = ?, tokens = NULL WHERE id = ?",
                            (shown, " " + shown, row["id"]))  # fmt: skip

    def add_edited_reply(self, conversation_id: int, position: int, text: str) -> int:
        """The person's own version of a reply: a new alternative there, chosen; the model's stay."""
        message_id = self.begin_reply(conversation_id, "edited", position)
        self.finish_reply(message_id, text, raw=" " + text, finish_reason="edited")
        return message_id

    def insert_exported(self, conversations: list[dict], fields: tuple[str, ...]) -> list[int]:
        """Conversations from an export, in one transaction: all of them, or nothing."""
        with self._transaction() as db:
            return [_insert_conversation(db, conversation, fields) for conversation in conversations]

    def truncate(self, conversation_id: int, position: int) -> None:
        """Remove the turns at ``position`` and after (a send that never got a reply)."""
        self.db.execute(
            "DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (conversation_id, position)
        )

    def search(self, query: str, limit: int = 50) -> list[tuple[int, str, str]]:
        """(conversation id, title, matching text) for messages containing the words."""
        if not query.strip():
            return []
        if self.fts:
            phrase = '"' + query.replace('"', '""') + '"'
            sql = (
                "SELECT c.id, c.title, m.text FROM messages_fts f JOIN messages m ON m.id = f.rowid"
                " JOIN conversations c ON c.id = m.conversation_id WHERE messages_fts MATCH ?"
                " ORDER BY c.updated_at DESC LIMIT ?"
            )
            rows = self.db.execute(sql, (phrase, limit))
        else:
            sql = (
                "SELECT c.id, c.title, m.text FROM messages m JOIN conversations c"
                " ON c.id = m.conversation_id WHERE m.text LIKE ? ORDER BY c.updated_at DESC LIMIT ?"
            )
            rows = self.db.execute(sql, (f"%{query}%", limit))
        return [(row[0], row[1], row[2]) for row in rows]

    # -- internals -------------------------------------------------------------

    def _transaction(self):
        return _Transaction(self.db)

    @staticmethod
    def _next_position(db: sqlite3.Connection, conversation_id: int) -> int:
        if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
            raise InputError(f"No conversation {conversation_id}.")
        return db.execute(
            "SELECT coalesce(max(position) + 1, 0) FROM messages WHERE conversation_id = ?",
            (conversation_id,),
        ).fetchone()[0]

    @staticmethod
    def _insert(db, conversation_id, position, alternative, role, text, status, model="") -> int:
        now = time.time()
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, position, alternative, chosen, role, text,"
            " status, model, created_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)",
            (conversation_id, position, alternative, role, text, status, model, now),
        )
        db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        return int(cursor.lastrowid)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error: all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_rest) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _conversation(row: sqlite3.Row, messages: list[StoredMessage] | None = None) -> Conversation:
    return Conversation(
        id=row["id"], title=row["title"], created_at=row["created_at"],
        updated_at=row["updated_at"], template=row["template"],
        settings=json.loads(row["settings"] or "{}"), model=row["model"],
        messages=messages or [],
    )  # fmt: skip


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"], position=row["position"], alternative=row["alternative"],
        alternatives=row["alternatives"], role=row["role"], text=row["text"],
        status=row["status"], created_at=row["created_at"], raw=row["raw"],
        tokens=unpack_tokens(row["tokens"]), finish_reason=row["finish_reason"],
        prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
        ttft_s=row["ttft_s"], tokens_per_s=row["tokens_per_s"], model=row["model"],
    )  # fmt: skip


def _insert_conversation(db, conversation: dict, fields: tuple[str, ...]) -> int:
    try:
        cursor = db.execute(
            "INSERT INTO conversations (title, created_at, updated_at, template, settings, model)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (str(conversation["title"]), float(conversation["created_at"]),
             float(conversation["updated_at"]), str(conversation["template"]),
             json.dumps(conversation.get("settings", {})), str(conversation.get("model", ""))),
        )  # fmt: skip
        new_id = int(cursor.lastrowid or 0)
        for message in conversation["messages"]:
            _insert_message(db, new_id, message, fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"The export is malformed ({type(exc).__name__}: {exc}).") from None
    except Exception as exc:  # sqlite constraint errors name the broken field
        raise InputError(f"The export is malformed ({exc}).") from None
    return new_id


def _insert_message(db, conversation_id: int, message: dict, fields: tuple[str, ...]) -> None:
    values = [message.get(key) for key in fields]
    values[fields.index("tokens")] = pack_tokens(message.get("tokens"))
    db.execute(
        f"INSERT INTO messages (conversation_id, chosen, {', '.join(fields)})"
        f" VALUES (?, ?, {', '.join('?' * len(fields))})",
        (conversation_id, 1 if message["chosen"] else 0, *values),
    )
