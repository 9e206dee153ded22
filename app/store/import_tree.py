"""An exported conversation checked as a tree before anything of it is stored, then written.

An export is a file from anywhere: edited by hand, cut short, or written by another program. The
store trusts what it holds (the shown path is "the chosen child at each step"), so a file that
would give it two chosen siblings, a message hanging from a later or missing one, a settings
string or a timestamp no calendar can show is refused here, in one line naming the message, and
nothing of it is written. Several roots are allowed: editing the first message makes a sibling
root, as editing any message makes a sibling.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

from app.errors import InputError
from app.store.blobs import pack_probs, pack_tokens

# Times a calendar can show (1970 to 9999): ``time.localtime`` overflows past these.
LATEST_TIME = 253_402_300_799.0
_ROLES = ("user", "assistant")
_STATUSES = ("done", "streaming", "interrupted")
_KINDS = ("chat", "notebook")
_NUMBERS = ("prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s")
_TEXTS = ("raw", "finish_reason", "model", "speaker")


def checked_conversation(conversation: object, number: int) -> list[str]:
    """Raise InputError for a conversation the store must not take; else the repairs made to it
    (a sibling group with no chosen member gets its newest one chosen), one line each."""
    where = f"conversation {number}"
    if not isinstance(conversation, dict):
        raise InputError(f"The export's {where} is not an object.")
    _check_header(conversation, where)
    messages = conversation.get("messages")
    if not isinstance(messages, list):
        raise InputError(f"The export's {where} has no list of messages.")
    for message in messages:
        _check_message(message, where)
    _check_hanging(messages, where)
    return _choose_where_none(messages, where)


def _check_header(conversation: dict, where: str) -> None:
    for key in ("title", "template"):
        if not isinstance(conversation.get(key), str):
            raise InputError(f"The export's {where} has no {key} text.")
    for key in ("created_at", "updated_at"):
        _check_time(conversation.get(key), f"{where}'s {key}")
    if not isinstance(conversation.get("settings", {}), dict):
        raise InputError(f"The export's {where} has settings that are not an object.")
    if conversation.get("kind", "chat") not in _KINDS:
        raise InputError(f"The export's {where} is of an unknown kind.")
    if not isinstance(conversation.get("model", ""), str):
        raise InputError(f"The export's {where} names its model with something other than text.")


def in_calendar(timestamp: float) -> bool:
    """Whether ``time.localtime`` can show this time (an older import may hold one it cannot)."""
    return 0 <= timestamp <= LATEST_TIME


def shown_time(timestamp: float, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time as the calendar shows it, or "unknown time": never an OverflowError."""
    return time.strftime(pattern, time.localtime(timestamp)) if in_calendar(timestamp) else "unknown time"


def _check_time(value: object, what: str) -> None:
    if not _is_number(value) or not 0 <= float(value) <= LATEST_TIME:  # type: ignore[arg-type]
        raise InputError(f"The export's {what} is not a time between 1970 and 9999.")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_message(message: object, where: str) -> None:
    if not isinstance(message, dict):
        raise InputError(f"The export's {where} has a message that is not an object.")
    name = f"{where}, message {_shown(message.get('id'))}"
    if not _is_id(message.get("id")):
        raise InputError(f"The export's {name} has no usable id.")
    if message.get("role") not in _ROLES or not isinstance(message.get("text"), str):
        raise InputError(f"The export's {name} needs a role (user or assistant) and a text.")
    if message.get("status") not in _STATUSES or not isinstance(message.get("chosen"), bool):
        raise InputError(f"The export's {name} has an unknown status or no chosen flag.")
    position = message.get("position")
    if type(position) is not int or position < 0:
        raise InputError(f"The export's {name} has no position.")
    _check_time(message.get("created_at"), f"{name}'s created_at")
    _check_fields(message, name)


def _check_fields(message: dict, name: str) -> None:
    bad = [key for key in _NUMBERS if message.get(key) is not None and not _is_number(message[key])]
    bad += [key for key in _TEXTS if message.get(key) is not None and not isinstance(message[key], str)]
    tokens = message.get("tokens")
    if tokens is not None and not (isinstance(tokens, list) and all(_is_token(t) for t in tokens)):
        bad.append("tokens")
    if bad:
        raise InputError(f"The export's {name} has a malformed {', '.join(bad)}.")


def _is_token(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**31


def _is_id(value: object) -> bool:
    return (type(value) is int) or (isinstance(value, str) and 0 < len(value) <= 100)


def _shown(value: object) -> str:
    return repr(value)[:40]


def _check_hanging(messages: list[dict], where: str) -> None:
    """Unique ids, and every parent an earlier message: so no cycle, and no child moves."""
    seen: set = set()
    for message in messages:
        name = f"{where}, message {_shown(message['id'])}"
        if message["id"] in seen:
            raise InputError(f"The export's {name} has the id of an earlier message.")
        parent = message.get("parent")
        if parent is not None and (not _is_id(parent) or parent not in seen):
            raise InputError(f"The export's {name} hangs from {_shown(parent)}, which is not before it.")
        seen.add(message["id"])
    chosen: dict = defaultdict(int)
    for message in messages:
        chosen[message.get("parent")] += message["chosen"]
    for parent, count in chosen.items():
        if count > 1:
            below = "the top" if parent is None else f"message {_shown(parent)}"
            raise InputError(f"The export's {where} has {count} chosen messages under {below}; one is shown.")


def _choose_where_none(messages: list[dict], where: str) -> list[str]:
    """A sibling group with none chosen would hide its branch: its newest member is chosen."""
    groups: dict = defaultdict(list)
    for message in messages:
        groups[message.get("parent")].append(message)
    repairs = []
    for parent, siblings in groups.items():
        if not any(m["chosen"] for m in siblings):
            siblings[-1]["chosen"] = True
            below = "the top" if parent is None else f"message {_shown(parent)}"
            repairs.append(f"{where}: no message under {below} was chosen; showing the newest.")
    return repairs


def insert_conversation(db, conversation: dict, fields: tuple[str, ...]) -> int:
    """A checked conversation of an export written in ``db`` (inside the caller's transaction);
    its new id. A constraint the checks did not foresee is one clear line too."""
    try:
        cursor = db.execute(
            "INSERT INTO conversations (title, created_at, updated_at, template, settings, model, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(conversation["title"]), float(conversation["created_at"]),
             float(conversation["updated_at"]), str(conversation["template"]),
             json.dumps(conversation.get("settings", {})), str(conversation.get("model", "")),
             str(conversation.get("kind", "chat"))),
        )  # fmt: skip
        new_id = int(cursor.lastrowid or 0)
        new_ids: dict = {}
        for message in conversation["messages"]:
            new_ids[message["id"]] = _insert_message(db, new_id, message, fields, new_ids)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"The export is malformed ({type(exc).__name__}: {exc}).") from None
    except Exception as exc:  # sqlite constraint errors name the broken field
        raise InputError(f"The export is malformed ({exc}).") from None
    return new_id


def _insert_message(db, conversation_id: int, message: dict, fields: tuple[str, ...], new_ids: dict) -> int:
    """``new_ids``: export ids already inserted → their new ids (a parent comes before its children)."""
    parent = message.get("parent")
    if parent is not None and parent not in new_ids:
        raise ValueError(f"message {message['id']} hangs from {parent}, which is not before it")
    values = [message.get(key) for key in fields]
    values[fields.index("tokens")] = pack_tokens(message.get("tokens"))
    cursor = db.execute(
        f"INSERT INTO messages (conversation_id, parent_id, chosen, probs, {', '.join(fields)})"
        f" VALUES (?, ?, ?, ?, {', '.join('?' * len(fields))})",
        (conversation_id, new_ids.get(parent), 1 if message["chosen"] else 0,
         pack_probs(message.get("probs")), *values),
    )  # fmt: skip
    return int(cursor.lastrowid or 0)
