"""One way in for a chat history file: a Basechat export or a SillyTavern chat log, whichever it
is (``export.py``, ``sillytavern.py``); any other file is one line saying what it looks like."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from app.errors import InputError
from app.store import sillytavern
from app.store.chats import ChatStore
from app.store.export import FORMAT, import_json

CHAT_FILE_LIMIT = 512 * 1024 * 1024  # a history file larger than this is not read


def import_chat_file(store: ChatStore, path: Path, told: Callable[[str], None]) -> list[int]:
    """A Basechat export or a SillyTavern chat log (``sillytavern.py``), whichever ``path`` is;
    any other file is one line saying what it looks like. ``told`` hears what was kept."""
    text = _read_text(path)
    if sillytavern.looks_like_chat_log(text):
        imported = sillytavern.from_chat_log(text, path.name)
        ids = import_json(store, imported.export, told)
        told(imported.summary(path.name))
        return ids
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith(("{", "[")):
            raise InputError(f"{path.name} is not valid JSON: {exc}.") from None
        raise InputError(f"{path.name} is not a chat history: it looks like {looks_like(text)}.") from None
    except RecursionError:
        raise InputError(f"{path.name} is nested too deeply to read.") from None
    if isinstance(data, dict) and data.get("format") != FORMAT:
        raise InputError(f"{path.name} is not a chat history: it looks like {looks_like(text)}.")
    return import_json(store, data, told)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > CHAT_FILE_LIMIT:
            raise InputError(f"{path.name} is over {CHAT_FILE_LIMIT >> 20} MB: not a chat history.")
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not text: it looks like {looks_like_bytes(path)}.") from None


def looks_like(text: str) -> str:
    """What a file that is not a chat history seems to be, in a few words."""
    head = text.lstrip()[:4096]
    if not head.startswith(("{", "[")):
        return "plain text, not JSON"
    for keys, what in _SHAPES:
        if all(f'"{key}"' in head for key in keys):
            return what
    return "JSON of some other program"


_SHAPES = (
    (("spec", "chara_card"), "a character card (use: basechat templates import)"),
    (("first_mes",), "a character card (use: basechat templates import)"),
    (("entries",), "a lorebook / World Info file (import it in the Frame panel's Lorebook tab)"),
    (("story_string",), "a SillyTavern context preset (use: basechat templates import)"),
    (("role", "content"), "an OpenAI-style message list"),
)


def looks_like_bytes(path: Path) -> str:
    with path.open("rb") as file:
        start = file.read(8)
    if start.startswith(b"\x89PNG"):
        return "a PNG image (a character card? use: basechat templates import)"
    if start.startswith(b"PK"):
        return "a zip archive"
    return "binary data"
