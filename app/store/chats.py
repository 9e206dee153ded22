"""Chat history: conversations, and their messages as a tree.

Every message names its parent; a message's siblings are its versions (a
regenerated reply, an edited user turn), and ``chosen`` marks the one child
each parent shows, so the shown path runs from the chosen root down through
chosen children. Editing a user message or regenerating a reply adds a sibling
and drops nothing: the old version keeps its whole branch. Every change here is
one transaction. Only the conversation service (``app.service``) writes turns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import InputError
from app.paths import data_dir
from app.store.blobs import pack_probs, pack_tokens, unpack_probs, unpack_tokens
from app.store.db import DB_NAME, open_database
from app.store.import_tree import insert_conversation
from app.store.migrations import has_fts5

# The shown branch: the chosen root, then at each step the chosen child.
# Each step names the conversation, so it uses the parent index (without it SQLite built a
# temporary index over every stored message on every read).
_PATH = (
    "WITH RECURSIVE path(id, depth, conversation) AS ("
    " SELECT id, 0, conversation_id FROM messages"
    " WHERE conversation_id = ? AND parent_id IS NULL AND chosen = 1"
    " UNION ALL SELECT m.id, path.depth + 1, path.conversation FROM path JOIN messages m"
    " ON m.conversation_id = path.conversation AND m.parent_id = path.id WHERE m.chosen = 1)"
)
# A message and everything below it, walked down by the parent index.
_BRANCH = (
    "WITH RECURSIVE branch(id) AS (SELECT ? UNION ALL"
    " SELECT m.id FROM messages m JOIN branch ON m.parent_id = branch.id) SELECT id FROM branch"
)
# A message's versions are its siblings: its index among them (oldest first) and their number.
_SIBLINGS = (
    "(SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id"
    " AND s.parent_id IS m.parent_id AND s.id < m.id) AS sibling_index,"
    " (SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id"
    " AND s.parent_id IS m.parent_id) AS alternatives"
)


@dataclass(frozen=True)
class TreeNode:
    """One message in the tree panel: where it hangs and whether the shown path runs through it."""

    id: int
    parent_id: int | None
    position: int
    role: str
    text: str
    on_path: bool


@dataclass(frozen=True)
class StoredMessage:
    """``alternative``: this version's index among its siblings; ``alternatives``: how many."""

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
    parent_id: int | None = None
    chosen: bool = True  # the version its parent shows (on an unshown branch too)
    has_probs: bool = False  # token probabilities were recorded (``ChatStore.token_probs``)
    speaker: str = ""  # a group chat's reply: the member who said it


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
    kind: str = "chat"  # or "notebook": a document the model continues, no transcript


def title_from(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


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
        model: str = "", kind: str = "chat",
    ) -> int:  # fmt: skip
        """``kind``: "chat", or "notebook" (a document the model continues; its user messages hold
        the document up to where it was continued, its replies the continuations)."""
        now = time.time()
        cursor = self.db.execute(
            "INSERT INTO conversations (title, created_at, updated_at, template, settings, model, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (title, now, now, template, json.dumps(settings or {}), model, kind),
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

    def header(self, conversation_id: int) -> Conversation:
        """The conversation without its messages: what opening a long chat reads before its tail."""
        row = self.db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise InputError(f"No conversation {conversation_id}.")
        return _conversation(row)

    def path_length(self, conversation_id: int) -> int:
        """How many turns the shown path has (the walk reads ids only, never texts)."""
        return self.db.execute(f"{_PATH} SELECT count(*) FROM path", (conversation_id,)).fetchone()[0]

    def path_ids(self, conversation_id: int) -> list[int]:
        """The shown path's message ids, root first (the walk reads ids only, never texts)."""
        return self._path(self.db, conversation_id)

    def path_slice(self, conversation_id: int, start: int, end: int | None = None) -> list[StoredMessage]:
        """Turns ``start`` to ``end`` of the shown path: a window shows a page of a long chat
        without reading (or counting the versions of) the rest."""
        rows = self.db.execute(
            f"{_PATH} SELECT m.*, {_SIBLINGS} FROM path JOIN messages m ON m.id = path.id"
            " WHERE path.depth >= ? AND path.depth < ? ORDER BY path.depth",
            (conversation_id, start, end if end is not None else 2**62),
        )
        return [_message(row) for row in rows]

    def path_tail(
        self, conversation_id: int, end: int | None, min_bytes: int, step: int
    ) -> list[StoredMessage]:
        """The latest turns before ``end`` that hold at least ``min_bytes`` of text (all of them
        when they hold less), starting at a multiple of ``step``: a prompt needs no turn before
        them, however long the chat. One walk of the path; texts are read only for the tail."""
        rows = self.db.execute(
            f"{_PATH}, before AS (SELECT * FROM path WHERE depth < ?),"
            " sized AS (SELECT before.depth, sum(length(CAST(m.text AS BLOB))) OVER (ORDER BY before.depth"
            " DESC) AS bytes FROM before JOIN messages m ON m.id = before.id),"
            " first(depth) AS (SELECT coalesce(max(depth), 0) / ? * ? FROM sized WHERE bytes >= ?)"
            f" SELECT m.*, {_SIBLINGS} FROM before JOIN messages m ON m.id = before.id"
            " WHERE before.depth >= (SELECT depth FROM first) ORDER BY before.depth",
            (conversation_id, 2**62 if end is None else end, step, step, min_bytes),
        )
        return [_message(row) for row in rows]

    def _thread(self, conversation_id: int) -> list[StoredMessage]:
        return self.path_slice(conversation_id, 0)

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
        return _settings_of(row[0])

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
        """The conversation and all its messages, of any length (``_unhang`` says why)."""
        with self._transaction() as db:
            self._unhang(db, "conversation_id = ?", (conversation_id,))
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise InputError(f"No conversation {conversation_id}.")

    @staticmethod
    def _unhang(db: sqlite3.Connection, where: str, args: tuple) -> None:
        """Let go of the parent links of the messages about to be deleted: each link is a foreign
        key with a cascade, and SQLite counts a cascade as a nested trigger, so a chain of over a
        thousand turns failed with "too many levels of trigger recursion"."""
        db.execute(f"UPDATE messages SET parent_id = NULL WHERE {where}", args)

    # -- messages --------------------------------------------------------------

    def add_user_message(self, conversation_id: int, text: str) -> int:
        """Committed before generation starts, so a crash never loses what was typed."""
        with self._transaction() as db:
            path = self._path(db, conversation_id)
            parent = path[-1] if path else None
            message_id = self._insert(db, conversation_id, parent, len(path), "user", text, "done")
            if not path:
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ?"
                    " AND title IN ('New chat', 'New notebook')",
                    (title_from(text), conversation_id),
                )
        return message_id

    def begin_reply(
        self, conversation_id: int, model: str = "", position: int | None = None, speaker: str = ""
    ) -> int:
        """A new assistant message, 'streaming', at the end of the shown path; at ``position`` it is
        a sibling of the message there (a regenerated version), and the older one keeps its branch.
        ``speaker``: the group member who says it."""
        with self._transaction() as db:
            path = self._path(db, conversation_id)
            if position is None or position >= len(path):
                parent, depth = (path[-1] if path else None), len(path)
            else:
                parent, depth = self._parent(db, path[position]), position
            return self._insert(
                db, conversation_id, parent, depth, "assistant", "", "streaming", model, speaker
            )

    def save_partial(self, message_id: int, text: str) -> None:
        self.db.execute("UPDATE messages SET text = ? WHERE id = ?", (text, message_id))

    def finish_reply(
        self, message_id: int, text: str, *, raw: str | None = None, tokens=None,
        finish_reason: str = "stop", prompt_tokens: int | None = None,
        completion_tokens: int | None = None, ttft_s: float | None = None,
        tokens_per_s: float | None = None, probs: list | None = None,
    ) -> None:  # fmt: skip
        # A reply the engine lost mid-way (a server died) is kept, marked like one cut by a crash.
        status = "interrupted" if finish_reason == "interrupted" else "done"
        self.db.execute(
            "UPDATE messages SET text = ?, raw = ?, tokens = ?, status = ?, finish_reason = ?,"
            " prompt_tokens = ?, completion_tokens = ?, ttft_s = ?, tokens_per_s = ?, probs = ?"
            " WHERE id = ?",
            (text, raw, pack_tokens(tokens), status, finish_reason, prompt_tokens, completion_tokens,
             ttft_s, tokens_per_s, pack_probs(probs), message_id),
        )  # fmt: skip

    def last_message(self, conversation_id: int) -> StoredMessage | None:
        """The end of the shown path, without reading the rest of it (a reply just finished)."""
        row = self.db.execute(f"{_PATH} SELECT id FROM path ORDER BY depth DESC LIMIT 1", (conversation_id,))
        found = row.fetchone()
        return self.message(found[0]) if found else None

    def message(self, message_id: int) -> StoredMessage:
        """One message with its version count, without reading its conversation."""
        query = f"SELECT m.*, {_SIBLINGS} FROM messages m WHERE m.id = ?"
        row = self.db.execute(query, (message_id,)).fetchone()
        if row is None:
            raise InputError("That message no longer exists.")
        return _message(row)

    def position_of(self, message_id: int) -> int:
        """How deep in its conversation a message is (0: the first turn)."""
        return self.db.execute("SELECT position FROM messages WHERE id = ?", (message_id,)).fetchone()[0]

    def token_probs(self, message_id: int) -> list | None:
        """The reply's tokens with their top candidates, as recorded when it was generated."""
        row = self.db.execute("SELECT probs FROM messages WHERE id = ?", (message_id,)).fetchone()
        return unpack_probs(row[0]) if row else None

    def choose(self, message_id: int) -> None:
        """Show the branch through ``message_id``: it becomes its parent's chosen child, and the
        path below it follows the choices last made there."""
        with self._transaction() as db:
            self._choose_path_to(db, message_id)

    def choose_alternative(self, conversation_id: int, position: int, alternative: int) -> None:
        """Show the ``alternative``-th version (0-based, oldest first) of the message at ``position``."""
        siblings = self.alternatives(conversation_id, position)
        if not 0 <= alternative < len(siblings):
            raise InputError(f"No alternative {alternative + 1} at that message.")
        self.choose(siblings[alternative].id)

    def alternatives(self, conversation_id: int, position: int) -> list[StoredMessage]:
        """Every version of the message at ``position`` of the shown path (its siblings), oldest first."""
        path = self._path(self.db, conversation_id)
        if position >= len(path):
            return []
        parent = self._parent(self.db, path[position])
        rows = self.db.execute(
            f"SELECT m.*, {_SIBLINGS} FROM messages m WHERE m.conversation_id = ? AND m.parent_id IS ?"
            " ORDER BY m.id",
            (conversation_id, parent),
        )
        return [_message(row) for row in rows]

    def edit_user_message(self, conversation_id: int, position: int, text: str) -> int:
        """New text for a user turn, as a new sibling version: the old one keeps its whole branch."""
        with self._transaction() as db:
            path = self._path(db, conversation_id)
            row = db.execute(
                "SELECT role, parent_id FROM messages WHERE id = ?", (path[position],)
            ).fetchone() if position < len(path) else None  # fmt: skip
            if row is None or row["role"] != "user":
                raise InputError("Only a user message can be edited.")
            return self._insert(db, conversation_id, row["parent_id"], position, "user", text, "done")

    def trim_last_reply(self, conversation_id: int, shown: str) -> None:
        """Stop keeps what the person saw: text that arrived after Stop was pressed is dropped
        (with the token ids, which no longer spell the text)."""
        path = self._path(self.db, conversation_id)
        if not path:
            return
        row = self.db.execute("SELECT id, text FROM messages WHERE id = ?", (path[-1],)).fetchone()
        if row and row["text"] != shown and row["text"].startswith(shown):
            self.db.execute("UPDATE messages SET text = ?, raw = ?, tokens = NULL, probs = NULL WHERE id = ?",
                            (shown, " " + shown, row["id"]))  # fmt: skip

    def add_edited_reply(self, conversation_id: int, position: int, text: str) -> int:
        """The person's own version of a reply: a new alternative there, chosen; the model's stay."""
        message_id = self.begin_reply(conversation_id, "edited", position)
        self.finish_reply(message_id, text, raw=" " + text, finish_reason="edited")
        return message_id

    def delete_branch(self, message_id: int) -> None:
        """Remove a message and everything below it; its parent shows its newest other child."""
        with self._transaction() as db:
            conversation_id, parent_id = self._placed(db, message_id)
            ids = json.dumps([row[0] for row in db.execute(_BRANCH, (message_id,))])
            self._unhang(db, "id IN (SELECT value FROM json_each(?))", (ids,))
            db.execute("DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))", (ids,))
            self._keep_one_chosen(db, conversation_id, parent_id)

    def all_messages(self, conversation_id: int) -> list[StoredMessage]:
        """Every message of every branch, parents before children (creation order)."""
        rows = self.db.execute(
            f"SELECT m.*, {_SIBLINGS} FROM messages m WHERE m.conversation_id = ? ORDER BY m.id",
            (conversation_id,),
        )
        return [_message(row) for row in rows]

    def branch_count(self, conversation_id: int) -> int:
        """How many branches (leaves) the conversation has; 1 when it never branched."""
        row = self.db.execute(
            "SELECT count(*) FROM messages m WHERE m.conversation_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM messages c WHERE c.conversation_id = m.conversation_id AND c.parent_id = m.id)",
            (conversation_id,),
        ).fetchone()
        return max(1, row[0])

    def end_path_at(self, message_id: int) -> None:
        """Show the branch through ``message_id`` and end it there: the next message hangs from it."""
        with self._transaction() as db:
            self._choose_path_to(db, message_id)
            db.execute("UPDATE messages SET chosen = 0 WHERE parent_id = ?", (message_id,))

    def tree(self, conversation_id: int) -> list[TreeNode]:
        """Every message of the conversation (all branches), in creation order."""
        on_path = set(self._path(self.db, conversation_id))
        rows = self.db.execute(
            "SELECT id, parent_id, position, role, text, chosen FROM messages WHERE conversation_id = ?"
            " ORDER BY id",
            (conversation_id,),
        )
        return [
            TreeNode(r["id"], r["parent_id"], r["position"], r["role"], r["text"], r["id"] in on_path)
            for r in rows
        ]

    def insert_exported(self, conversations: list[dict], fields: tuple[str, ...]) -> list[int]:
        """Conversations from an export, in one transaction: all of them, or nothing."""
        with self._transaction() as db:
            return [insert_conversation(db, conversation, fields) for conversation in conversations]

    def truncate(self, conversation_id: int, position: int) -> None:
        """Remove the shown path's turn at ``position`` and its branch (a send that never got a reply)."""
        path = self._path(self.db, conversation_id)
        if position < len(path):
            self.delete_branch(path[position])

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
    def _path(db: sqlite3.Connection, conversation_id: int) -> list[int]:
        """Message ids of the shown branch, root first; InputError if there is no such conversation."""
        if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
            raise InputError(f"No conversation {conversation_id}.")
        rows = db.execute(f"{_PATH} SELECT id FROM path ORDER BY depth", (conversation_id,))
        return [row[0] for row in rows]

    @staticmethod
    def _parent(db: sqlite3.Connection, message_id: int) -> int | None:
        return db.execute("SELECT parent_id FROM messages WHERE id = ?", (message_id,)).fetchone()[0]

    @staticmethod
    def _placed(db: sqlite3.Connection, message_id: int) -> tuple[int, int | None]:
        """(conversation id, parent id) of a message; InputError if it is gone."""
        row = db.execute(
            "SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise InputError("That message no longer exists.")
        return row[0], row[1]

    @classmethod
    def _choose_path_to(cls, db: sqlite3.Connection, message_id: int) -> None:
        """Every message from the root down to ``message_id`` becomes its parent's chosen child, and
        its siblings are not chosen: one statement, however deep the message is."""
        conversation_id, _parent = cls._placed(db, message_id)
        db.execute(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM messages WHERE id = ?"
            " UNION ALL SELECT m.id, m.parent_id FROM messages m JOIN up ON m.id = up.parent_id)"
            " UPDATE messages SET chosen = (id IN (SELECT id FROM up)) WHERE conversation_id = ?"
            " AND (parent_id IS NULL OR parent_id IN (SELECT parent_id FROM up))",
            (message_id, conversation_id),
        )

    @staticmethod
    def _keep_one_chosen(db: sqlite3.Connection, conversation_id: int, parent_id: int | None) -> None:
        """After a deletion: if no child of ``parent_id`` is chosen, the newest one is."""
        children = "conversation_id = ? AND parent_id IS ?"
        args = (conversation_id, parent_id)
        if db.execute(f"SELECT 1 FROM messages WHERE {children} AND chosen = 1", args).fetchone():
            return
        db.execute(
            f"UPDATE messages SET chosen = 1 WHERE id = (SELECT max(id) FROM messages WHERE {children})", args
        )

    @staticmethod
    def _insert(db, conversation_id, parent_id, position, role, text, status, model="", speaker="") -> int:
        """A new message, chosen among its siblings (so the shown path runs through it)."""
        now = time.time()
        db.execute("UPDATE messages SET chosen = 0 WHERE conversation_id = ? AND parent_id IS ?",
                   (conversation_id, parent_id))  # fmt: skip
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, parent_id, position, chosen, role, text,"
            " status, model, speaker, created_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (conversation_id, parent_id, position, role, text, status, model, speaker or None, now),
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
        settings=_settings_of(row["settings"]), model=row["model"],
        messages=messages or [], kind=row["kind"],
    )  # fmt: skip


def _settings_of(stored: str | None) -> dict:
    """A conversation's settings; {} for anything but an object (an older import could store one)."""
    try:
        settings = json.loads(stored or "{}")
    except ValueError:
        return {}
    return settings if isinstance(settings, dict) else {}


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"], position=row["position"], alternative=row["sibling_index"],
        alternatives=row["alternatives"], role=row["role"], text=row["text"],
        status=row["status"], created_at=row["created_at"], raw=row["raw"],
        tokens=unpack_tokens(row["tokens"]), finish_reason=row["finish_reason"],
        prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
        ttft_s=row["ttft_s"], tokens_per_s=row["tokens_per_s"], model=row["model"],
        parent_id=row["parent_id"], chosen=bool(row["chosen"]), has_probs=row["probs"] is not None,
        speaker=row["speaker"] or "",
    )  # fmt: skip
