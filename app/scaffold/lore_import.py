"""Lorebooks from the files people own, and back: a card's ``character_book`` (Character Card V2/V3),
a SillyTavern World Info file (``entries`` keyed by uid) and Kobold Lite's ``worldinfo`` list.

Each entry keeps the fields Basechat does not use (as JSON in ``extra``), so a card exported again
carries its lorebook as it came. Only the formats' public field names are used here.
"""

from __future__ import annotations

import json

from app.errors import TemplateError
from app.scaffold.lorebook import MAX_ENTRIES, Lorebook, LoreEntry, Position

# SillyTavern's numbered places: 0 before the character, 1 after, 4 at a depth. The others (the
# author's note's top and bottom, the examples' top and bottom, outlets) go after the description.
_ST_POSITIONS: dict[int, Position] = {0: "before_char", 1: "after_char", 4: "at_depth"}
_ST_LOGIC = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}
_CARD_ENTRY_USED = {"keys", "secondary_keys", "content", "enabled", "insertion_order", "case_sensitive",
                    "name", "comment", "priority", "selective", "constant", "position"}  # fmt: skip


def book_from_card(book: object, notes: list[str]) -> Lorebook | None:
    """A card's ``character_book``; what an entry holds beyond the spec stays in its ``extra``."""
    if not isinstance(book, dict):
        return None
    entries = book.get("entries") or []
    if not isinstance(entries, list):
        raise TemplateError("The card's character_book 'entries' should be a list.")
    made = [_card_entry(e) for e in entries[:MAX_ENTRIES] if isinstance(e, dict)]
    _note_skipped(len(entries), len(made), notes)
    extra = {k: v for k, v in book.items() if k not in ("entries", "scan_depth", "token_budget", "name")}
    return Lorebook(
        tuple(e for e in made if e is not None), name=_text(book.get("name")),
        scan_depth=_number(book.get("scan_depth"), 2, 0, 100),
        token_budget=_number(book.get("token_budget"), 512, 0, 1 << 20), extra=_json(extra),
    )  # fmt: skip


def _card_entry(data: dict) -> LoreEntry | None:
    content = _text(data.get("content"))
    if not content:
        return None
    ext = table(data, "extensions")
    position = _card_position(data, ext)
    selective = bool(data.get("selective")) or bool(data.get("secondary_keys"))
    return LoreEntry(
        content=content, keys=_keys(data.get("keys")),
        secondary_keys=_keys(data.get("secondary_keys")) if selective else (),
        logic=_ST_LOGIC.get(_number(ext.get("selectiveLogic"), 0, 0, 3), "and_any"),  # type: ignore[arg-type]
        constant=bool(data.get("constant")), enabled=data.get("enabled", True) is not False,
        case_sensitive=bool(data.get("case_sensitive")), whole_words=bool(ext.get("match_whole_words")),
        order=_number(data.get("insertion_order"), 100), priority=_number(data.get("priority"), 10),
        position=position, depth=_number(ext.get("depth"), 4, 0, 1000),
        name=_text(data.get("name")) or _text(data.get("comment")),
        extra=_json({k: v for k, v in data.items() if k not in _CARD_ENTRY_USED or k == "comment"}),
    )  # fmt: skip


def _card_position(data: dict, ext: dict) -> Position:
    if ext.get("position") == 4:
        return "at_depth"
    return "before_char" if data.get("position") == "before_char" else "after_char"


def book_from_world_info(data: dict, notes: list[str]) -> Lorebook:
    """SillyTavern's World Info file: ``{"entries": {"0": {...}, ...}}`` (a list is read too)."""
    entries = data.get("entries")
    values = list(entries.values()) if isinstance(entries, dict) else entries
    if not isinstance(values, list):
        raise TemplateError("This World Info file's 'entries' are neither a table nor a list.")
    made = [_any_entry(e, notes) for e in values[:MAX_ENTRIES] if isinstance(e, dict)]
    _note_skipped(len(values), len([m for m in made if m]), notes)
    extra = _json({k: v for k, v in data.items() if k not in ("entries", "name")})
    return Lorebook(tuple(m for m in made if m is not None), name=_text(data.get("name")), extra=extra)


def _any_entry(data: dict, notes: list[str]) -> LoreEntry | None:
    """An entry of a list-shaped book: World Info's (``key``), or a card's ``character_book`` entry
    (``keys``), the shape Basechat exports and many books are shared in; read as World Info, its
    keys were lost and no entry ever fired."""
    card_shaped = "keys" in data and "key" not in data
    return _card_entry(data) if card_shaped else _world_info_entry(data, notes)


_WI_USED = {"key", "keysecondary", "content", "comment", "constant", "selective", "selectiveLogic", "order",
            "position", "disable", "depth", "caseSensitive", "matchWholeWords"}  # fmt: skip


def _world_info_entry(data: dict, notes: list[str]) -> LoreEntry | None:
    content = _text(data.get("content"))
    if not content:
        return None
    where = _number(data.get("position"), 0, 0, 100)
    if where not in _ST_POSITIONS and "placed after the description" not in " ".join(notes):
        notes.append("entries placed at the author's note or the examples are placed after the description")
    return LoreEntry(
        content=content, keys=_keys(data.get("key")),
        secondary_keys=_keys(data.get("keysecondary")) if data.get("selective", True) else (),
        logic=_ST_LOGIC.get(_number(data.get("selectiveLogic"), 0, 0, 3), "and_any"),  # type: ignore[arg-type]
        constant=bool(data.get("constant")), enabled=not data.get("disable"),
        case_sensitive=bool(data.get("caseSensitive")), whole_words=bool(data.get("matchWholeWords")),
        order=_number(data.get("order"), 100), position=_ST_POSITIONS.get(where, "after_char"),
        depth=_number(data.get("depth"), 4, 0, 1000), name=_text(data.get("comment")),
        extra=_json({k: v for k, v in data.items() if k not in _WI_USED}),
    )  # fmt: skip


def book_from_kobold(entries: object, scan_depth: object, notes: list[str]) -> Lorebook | None:
    """Kobold Lite's ``worldinfo``: comma-separated ``key``, ``keysecondary`` (with ``selective``),
    ``keyanti`` (the entry does not fire when one is there), ``constant``. Kobold puts world info
    above the memory, so these go before the description."""
    if not isinstance(entries, list) or not entries:
        return None
    made = [_kobold_entry(e, notes) for e in entries[:MAX_ENTRIES] if isinstance(e, dict)]
    _note_skipped(len(entries), len([m for m in made if m]), notes)
    depth = _number(scan_depth, 0, 0, 100)
    return Lorebook(tuple(m for m in made if m is not None), scan_depth=depth or 2)


def _kobold_entry(data: dict, notes: list[str]) -> LoreEntry | None:
    content = _text(data.get("content"))
    if not content:
        return None
    secondary = _split(data.get("keysecondary")) if data.get("selective") else ()
    anti = _split(data.get("keyanti"))
    if anti and secondary:
        notes.append("an entry's anti-keys were left out (it also has secondary keys)")
    return LoreEntry(
        content=content, keys=_split(data.get("key")), secondary_keys=secondary or anti,
        logic="and_any" if secondary or not anti else "not_any", constant=bool(data.get("constant")),
        position="before_char", name=_text(data.get("comment")),
        extra=_json({k: v for k, v in data.items() if k not in ("key", "keysecondary", "keyanti", "content",
                                                                "comment", "selective", "constant")}),
    )  # fmt: skip


def book_to_card(book: Lorebook) -> dict:
    """The lorebook as a card's ``character_book``: each entry's own fields back, then Basechat's."""
    data = _loads(book.extra) | {"name": book.name, "scan_depth": book.scan_depth,
                                 "token_budget": book.token_budget}  # fmt: skip
    data.setdefault("extensions", {})
    data["entries"] = [_entry_to_card(e, number) for number, e in enumerate(book.entries)]
    return data


def _entry_to_card(entry: LoreEntry, number: int) -> dict:
    data = _loads(entry.extra)
    ext = table(data, "extensions")
    if entry.position == "at_depth":
        ext = ext | {"position": 4, "depth": entry.depth}
    logic = {v: k for k, v in _ST_LOGIC.items()}[entry.logic]
    data.update({
        "keys": list(entry.keys), "content": entry.content, "extensions": ext | {"selectiveLogic": logic},
        "enabled": entry.enabled, "insertion_order": entry.order, "case_sensitive": entry.case_sensitive,
        "name": entry.name, "priority": entry.priority, "id": data.get("id", number),
        "selective": bool(entry.secondary_keys), "secondary_keys": list(entry.secondary_keys),
        "constant": entry.constant,
        "position": "before_char" if entry.position == "before_char" else "after_char",
    })  # fmt: skip
    return data


# -- field hygiene ------------------------------------------------------------------------------


def table(data: dict, key: str) -> dict:
    """``data[key]`` when it is a table, else an empty one (files are hostile until checked)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _note_skipped(given: int, made: int, notes: list[str]) -> None:
    if given > made:
        notes.append(
            f"{given - made} lorebook entr{'y' if given - made == 1 else 'ies'} without text left out"
        )


def _keys(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return _split(value)
    if not isinstance(value, list):
        return ()
    return tuple(k.strip()[:200] for k in value[:64] if isinstance(k, str) and k.strip())


def _split(value: object) -> tuple[str, ...]:
    return (
        tuple(k.strip()[:200] for k in value.split(",")[:64] if k.strip()) if isinstance(value, str) else ()
    )


def _text(value: object) -> str:
    return value.replace("\r\n", "\n").strip()[:32_000] if isinstance(value, str) else ""


def _number(value: object, default: int, low: int = -(10**6), high: int = 10**6) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        return max(low, min(high, int(float(value))))
    except (ValueError, OverflowError):
        return default


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True) if data else ""


def _loads(text: str) -> dict:
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
