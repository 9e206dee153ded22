"""SillyTavern's chat logs in and out: the ``.jsonl`` files in its ``data/<user>/chats/`` folders.

A log is one JSON object per line (SillyTavern's ``saveChat``, public/script.js): a header
(``user_name``, ``character_name``, ``create_date``, ``chat_metadata``), then a message per line
(``name``, ``is_user``, ``is_system``, ``send_date``, ``mes``, and for a regenerated reply its
``swipes`` with the shown ``swipe_id``). A group chat's header says ``"unused"`` for the names
and its messages carry each character's name. Coming in, a log becomes a Basechat export —
swipes become versions of their reply, the shown one chosen — and passes the same checks as
any export (``import_tree``); going out, the shown path is written with each reply's versions as
its swipes, which SillyTavern's reader (one ``JSON.parse`` per line) takes back.

Everything in the file is hostile until checked: a line that is not an object, a message with
no text, a date no calendar shows — each is one clear line, and nothing is stored.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from app.errors import InputError
from app.scaffold import DEFAULT_TEMPLATE, Template, load_template
from app.scaffold.template import template_to_dict
from app.store.import_tree import LATEST_TIME

MAX_LINES = 200_000  # a chat log longer than this is not a chat log
_UNUSED = "unused"  # a group chat's header names
# ``send_date`` as SillyTavern has written it over the years (besides ISO text and epoch numbers).
_DATE_FORMATS = (
    "%B %d, %Y %I:%M%p",
    "%B %d, %Y %I:%M %p",
    "%Y-%m-%d @%Hh %Mm %Ss %fms",
    "%Y-%m-%d@%Hh%Mm%Ss",
)


@dataclass
class Imported:
    """A log as a Basechat export, and what was kept and left out (the one line said about it)."""

    export: dict
    speakers: list[str] = field(default_factory=list)
    swipes: int = 0
    left_out: int = 0

    def summary(self, name: str) -> str:
        kept = len(self.export["conversations"][0]["messages"])
        said = f"{name}: {kept} messages"
        said += f", {self.swipes} swipes kept as versions" if self.swipes else ""
        if len(self.speakers) > 1:
            said += f"; a group chat of {', '.join(self.speakers)}, each reply keeping its speaker"
        return said + (f"; left out {self.left_out} system or hidden message(s)" if self.left_out else "")


def looks_like_chat_log(text: str) -> bool:
    """Whether ``text`` is a SillyTavern log: JSON lines, the first or second with ``mes``/``is_user``
    or a header naming ``character_name`` (a Basechat export is one JSON document instead)."""
    lines = [line for line in text.splitlines()[:3] if line.strip()]
    objects = [_object(line) for line in lines]
    return bool(objects) and any(o is not None and ({"mes", "character_name", "chat_metadata"} & o.keys())
                                 for o in objects)  # fmt: skip


def _object(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def from_chat_log(text: str, name: str) -> Imported:
    """The log ``text`` (from the file ``name``) as a Basechat export of one conversation."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) > MAX_LINES:
        raise InputError(f"{name} has over {MAX_LINES:,} lines: not a chat log.")
    rows = [(n, _row(line, name, n)) for n, line in lines]
    header = rows[0][1] if rows and "mes" not in rows[0][1] else {}
    messages = [(n, row) for n, row in rows if "mes" in row or row is not header]
    if not messages:
        raise InputError(f"{name} is a SillyTavern chat log with no messages.")
    return _conversation(header, messages, name)


def _row(line: str, name: str, number: int) -> dict:
    value = _object(line)
    if value is None:
        raise InputError(f"{name}, line {number}: not a JSON object, so this is not a SillyTavern chat log.")
    return value


def _conversation(header: dict, messages: list[tuple[int, dict]], name: str) -> Imported:
    """The messages as a chain whose swipes hang side by side, the shown one carrying it on."""
    imported, rows, depths = Imported({}), list[dict](), list[int]()
    parent: int | None = None
    created = _when(header.get("create_date"), time.time())
    for number, message in messages:
        if message.get("is_system") is True:  # SillyTavern's notices and hidden messages
            imported.left_out += 1
            continue
        role = "user" if message.get("is_user") is True else "assistant"
        _note_speaker(imported, role, message)
        versions, when = _versions(message, name, number), _when(message.get("send_date"), created)
        shown, depth = _shown_swipe(message, len(versions)), 0 if parent is None else depths[parent] + 1
        for index, text in enumerate(versions):
            rows.append({"id": len(rows), "parent": parent, "position": depth, "role": role, "status": "done",
                         "text": text.strip(), "created_at": when, "chosen": index == shown,
                         "speaker": _text(message.get("name")) if role == "assistant" else ""})  # fmt: skip
            depths.append(depth)
        parent = len(rows) - len(versions) + shown
        imported.swipes += len(versions) - 1
    if not rows:
        raise InputError(f"{name} holds only system messages: nothing to import.")
    imported.export = _export(header, rows, imported.speakers, created)
    return imported


def _note_speaker(imported: Imported, role: str, message: dict) -> None:
    speaker = _text(message.get("name"))
    if role == "assistant" and speaker and speaker not in imported.speakers:
        imported.speakers.append(speaker)


def _versions(message: dict, name: str, number: int) -> list[str]:
    """A message's texts: its swipes when it has several, else its ``mes``."""
    text = message.get("mes")
    if not isinstance(text, str):
        raise InputError(f"{name}, line {number}: a message without text (mes).")
    swipes = message.get("swipes")
    if isinstance(swipes, list) and len(swipes) > 1 and all(isinstance(s, str) for s in swipes):
        return list(swipes)
    return [text]


def _shown_swipe(message: dict, count: int) -> int:
    index = message.get("swipe_id", 0)
    return index if type(index) is int and 0 <= index < count else 0


def _export(header: dict, rows: list[dict], speakers: list[str], created: float) -> dict:
    from app.store.export import FORMAT, VERSION

    frame = _group_frame(speakers, _frame(header, speakers))
    for row in rows:
        row["speaker"] = row["speaker"] if frame.members else None
    title = ", ".join(speakers) if len(speakers) > 1 else frame.assistant_name
    conversation = {
        "title": f"{title} (SillyTavern)", "template": DEFAULT_TEMPLATE, "created_at": created,
        "updated_at": max(row["created_at"] for row in rows), "kind": "chat",
        "settings": {"frame": template_to_dict(frame)}, "messages": rows,
    }  # fmt: skip
    return {"format": FORMAT, "version": VERSION, "conversations": [conversation]}


def _frame(header: dict, speakers: list[str]) -> Template:
    """The chat frame with the log's names: its user, and its character (a one-character group's
    too); names a transcript cannot use ("a:b", the same twice) keep the frame's own."""
    frame = load_template(DEFAULT_TEMPLATE)
    user, character = _text(header.get("user_name")), _text(header.get("character_name"))
    if character in ("", _UNUSED) and len(speakers) == 1:
        character = speakers[0]
    user = user if user not in ("", _UNUSED) else frame.user_name
    character = character if character not in ("", _UNUSED) else frame.assistant_name
    if user.casefold() == character.casefold() or ":" in user + character:
        return frame
    return replace(frame, user_name=user, assistant_name=character)


def _group_frame(speakers: list[str], frame: Template) -> Template:
    """A log with several characters becomes a group of them, each reply keeping its speaker; a
    group whose names a transcript cannot use (the person's own, "a:b") stays one assistant."""
    from app.errors import BasechatError
    from app.scaffold.group import Member, group_template

    if len(speakers) < 2:
        return frame
    try:
        return group_template([Member(name) for name in speakers], frame)
    except BasechatError:
        return frame


def _text(value: object) -> str:
    return " ".join(value.split())[:100] if isinstance(value, str) else ""


def _when(value: object, fallback: float) -> float:
    """``send_date`` or ``create_date`` as seconds since 1970: epoch milliseconds or seconds, ISO
    text, or one of SillyTavern's own formats; anything else (or out of the calendar) is
    ``fallback``."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else float(value)
    elif isinstance(value, str):
        seconds = _parsed(value.strip())
    return seconds if seconds is not None and 0 <= seconds <= LATEST_TIME else fallback


def _parsed(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    except ValueError:
        pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


# -- out -------------------------------------------------------------------------------------------


def to_chat_log(store, conversation_id: int) -> str:
    """The conversation's shown path as a SillyTavern log: each message with its versions as
    swipes (the shown one's index as ``swipe_id``), user and character named as in its frame."""
    from app.store.export import conversation_template

    conversation = store.get(conversation_id)
    frame = conversation_template(conversation)
    character = _UNUSED if frame.members else frame.assistant_name  # a group's header, as SillyTavern's
    header = {"user_name": frame.user_name, "character_name": character,
              "create_date": _iso(conversation.created_at), "chat_metadata": {}}  # fmt: skip
    path = store.path_slice(conversation_id, 0)
    lines = [header] + [_log_line(store, conversation_id, m, frame) for m in path]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _log_line(store, conversation_id: int, message, frame) -> dict:
    """One message; its versions are read only when it has some (a long chat stays one walk)."""
    is_user = message.role == "user"
    speaker = frame.user_name if is_user else message.speaker or frame.assistant_name
    line = {"name": speaker, "is_user": is_user, "is_system": False,
            "send_date": _iso(message.created_at), "mes": message.text}  # fmt: skip
    if message.alternatives > 1:
        versions = [
            m for m in store.alternatives(conversation_id, message.position) if m.role == message.role
        ]
        line["swipes"] = [m.text for m in versions]
        line["swipe_id"] = next((i for i, m in enumerate(versions) if m.id == message.id), 0)
    return line


def _iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
