"""Lorebooks (SillyTavern's and KoboldCpp's World Info): lines of lore that enter the prompt only
when the conversation mentions them, so a card can keep a large world consistent in a small context.

An entry fires when one of its keys is in the newest messages (``scan_depth`` of them), filtered by
its secondary keys (SillyTavern's AND ANY / NOT ALL / NOT ANY / AND ALL); constant entries are
always in. Fired entries are kept within ``token_budget``, highest priority first, and placed
before or after the character's description or at a depth (N messages from the end).

Where an entry goes decides what the model re-reads. An entry in the frame changes the prompt's
very start, and the whole conversation would be evaluated again on every turn it fires. With
``keep_cache`` (the default) a fired entry whose place is the frame goes under the newest message
instead, so the frame and the history stay cached; constant entries stay where they were written.

Pure functions of the messages: the same conversation always fires the same entries.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

log = logging.getLogger(__name__)

Position = Literal["before_char", "after_char", "at_depth"]
Logic = Literal["and_any", "not_all", "not_any", "and_all"]
POSITIONS: tuple[Position, ...] = ("before_char", "after_char", "at_depth")
LOGICS: tuple[Logic, ...] = ("and_any", "not_all", "not_any", "and_all")
MAX_ENTRIES = 1000
MAX_KEYS = 64
MAX_DEPTH = 1000
KEY_MATCH_SECONDS = 0.05
PATTERN_BUDGET_SECONDS = 0.1  # for all of a message's pattern keys together
_SCANNED_CHARS = 20_000


@dataclass(frozen=True)
class LoreEntry:
    """One entry. ``extra``: the fields its source file had that Basechat does not use, as JSON,
    so that exporting the card again gives them back untouched."""

    content: str
    keys: tuple[str, ...] = ()
    secondary_keys: tuple[str, ...] = ()
    logic: Logic = "and_any"
    constant: bool = False
    enabled: bool = True
    case_sensitive: bool = False
    whole_words: bool = False
    order: int = 100  # insertion order: lower comes first
    priority: int = 10  # kept first when the budget is short
    position: Position = "at_depth"
    depth: int = 4
    name: str = ""  # the author's label (SillyTavern's "comment")
    extra: str = ""


@dataclass(frozen=True)
class Lorebook:
    entries: tuple[LoreEntry, ...] = ()
    name: str = ""
    scan_depth: int = 2  # how many of the newest messages are searched for keys
    token_budget: int = 512
    keep_cache: bool = True
    extra: str = ""


@dataclass(frozen=True)
class Fired:
    """An entry that goes into this prompt, where, and why (the prompt inspector shows the why)."""

    entry: LoreEntry
    reason: str
    position: Position
    depth: int


@dataclass(frozen=True)
class LoreScan:
    fired: tuple[Fired, ...] = ()
    over_budget: tuple[LoreEntry, ...] = ()

    def placed(self, position: Position) -> list[Fired]:
        return [f for f in self.fired if f.position == position]


def add_entries(book: Lorebook | None, added: Lorebook) -> Lorebook:
    """``added``'s entries after ``book``'s (a second World Info file adds to the first); the
    first book's settings stay."""
    if book is None:
        return added
    return replace(book, entries=(*book.entries, *added.entries)[:MAX_ENTRIES])


def estimate_tokens(text: str) -> int:
    """A model-free count for the budget when no tokenizer is at hand (about 4 characters a token)."""
    return max(1, len(text) // 4)


def scan(
    book: Lorebook | None, messages: list[str], count: Callable[[str], int] = estimate_tokens
) -> LoreScan:
    """The entries ``messages`` (oldest first; the newest is the message being sent) fire."""
    if book is None or not book.entries:
        return LoreScan()
    window = "\n".join(messages[-book.scan_depth :] if book.scan_depth > 0 else [])[-_SCANNED_CHARS:]
    budget = _Budget(time.monotonic() + PATTERN_BUDGET_SECONDS)
    candidates = [(e, why) for e in book.entries if e.enabled and (why := _why_fired(e, window, budget))]
    if budget.skipped:
        log.warning("lorebook: %d pattern keys skipped, the message's %.0f ms for patterns were spent",
                    budget.skipped, PATTERN_BUDGET_SECONDS * 1000)  # fmt: skip
    kept, over = _within_budget(candidates, book.token_budget, count)
    ordered = sorted(kept, key=lambda pair: pair[0].order)
    return LoreScan(tuple(_place(book, e, why) for e, why in ordered), tuple(over))


@dataclass
class _Budget:
    """The time one scan may spend on pattern keys, all keys together: each has its own limit too,
    but a book of many slow patterns would still cost seconds a message (90 took 12 s)."""

    deadline: float
    skipped: int = 0

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _why_fired(entry: LoreEntry, text: str, budget: _Budget) -> str:
    """Why the entry fires ("" when it does not)."""
    if entry.constant:
        return "constant"
    key = next((k for k in entry.keys if key_matches(entry, k, text, budget)), None)
    if key is None or not _secondary_allows(entry, text, budget):
        return ""
    return f"key '{key}'"


def _secondary_allows(entry: LoreEntry, text: str, budget: _Budget) -> bool:
    if not entry.secondary_keys:
        return True
    hits = [key_matches(entry, k, text, budget) for k in entry.secondary_keys]
    return {
        "and_any": any(hits), "and_all": all(hits), "not_any": not any(hits), "not_all": not all(hits),
    }[entry.logic]  # fmt: skip


def key_matches(entry: LoreEntry, key: str, text: str, budget: _Budget | None = None) -> bool:
    """A plain key (any case unless the entry says otherwise; whole words when it says so), or a
    ``/regex/flags`` key as SillyTavern writes them, matched with a time limit of its own and
    within what is left of the scan's ``budget`` (skipped, no match, once that is spent)."""
    regex_key = re.fullmatch(r"/(.+)/([a-z]*)", key.strip(), flags=re.DOTALL)
    if regex_key:
        seconds = min(budget.left(), KEY_MATCH_SECONDS) if budget is not None else KEY_MATCH_SECONDS
        if budget is not None and seconds <= 0:
            budget.skipped += 1
            return False
        return _regex_matches(regex_key.group(1), regex_key.group(2), text, seconds)
    needle = key.strip()
    if not needle:
        return False
    flags = 0 if entry.case_sensitive else re.IGNORECASE
    pattern = rf"(?<!\w){re.escape(needle)}(?!\w)" if entry.whole_words else re.escape(needle)
    return re.search(pattern, text, flags) is not None


def _regex_matches(pattern: str, flags: str, text: str, seconds: float) -> bool:
    import regex

    options = regex.IGNORECASE if "i" in flags else 0
    try:
        return regex.search(pattern, text, options, timeout=seconds) is not None
    except TimeoutError:
        log.warning("lorebook key /%s/ took too long; no match", pattern[:60])
    except (regex.error, RecursionError, OverflowError, ValueError):
        log.warning("lorebook key /%s/ is not a valid pattern; no match", pattern[:60])
    return False


def _within_budget(
    candidates: list[tuple[LoreEntry, str]], budget: int, count: Callable[[str], int]
) -> tuple[list[tuple[LoreEntry, str]], list[LoreEntry]]:
    """Constant entries first, then by priority (then order): what fits in ``budget`` tokens."""
    ranked = sorted(candidates, key=lambda pair: (not pair[0].constant, -pair[0].priority, pair[0].order))
    kept, over, used = [], [], 0
    for entry, why in ranked:
        size = count(entry.content)
        if used + size > budget:
            over.append(entry)
            continue
        kept.append((entry, why))
        used += size
    return kept, over


def _place(book: Lorebook, entry: LoreEntry, why: str) -> Fired:
    """Where the entry goes in this prompt (see the module's note on ``keep_cache``)."""
    if entry.position != "at_depth" and book.keep_cache and not entry.constant:
        return Fired(entry, f"{why}; under the newest message, so the frame stays cached", "at_depth", 0)
    return Fired(entry, why, entry.position, entry.depth)


# -- plain data (TOML files, chat settings) ----------------------------------------------------


def lorebook_to_dict(book: Lorebook) -> dict:
    data: dict = {
        "name": book.name, "scan_depth": book.scan_depth, "token_budget": book.token_budget,
        "keep_cache": book.keep_cache, "entries": [_entry_dict(e) for e in book.entries],
    }  # fmt: skip
    return data | ({"extra": book.extra} if book.extra else {})


def _entry_dict(entry: LoreEntry) -> dict:
    defaults = LoreEntry("")
    data: dict[str, Any] = {"content": entry.content}
    for name in ("keys", "secondary_keys", "logic", "constant", "enabled", "case_sensitive", "whole_words",
                 "order", "priority", "position", "depth", "name", "extra"):  # fmt: skip
        value = getattr(entry, name)
        if value != getattr(defaults, name) or name == "keys":
            data[name] = list(value) if isinstance(value, tuple) else value
    return data


def lorebook_from_dict(data: object) -> Lorebook:
    """Validated so a bad file fails with one clear line (ValueError/TypeError to the caller)."""
    if not isinstance(data, dict):
        raise ValueError("'lorebook' must be a table")
    entries = data.get("entries", [])
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise ValueError(f"lorebook 'entries' must be a list of at most {MAX_ENTRIES}")
    return Lorebook(
        entries=tuple(_entry_from_dict(e) for e in entries), name=_str(data, "name"),
        scan_depth=_int(data, "scan_depth", 2, 0, 100),
        token_budget=_int(data, "token_budget", 512, 0, 1 << 20),
        keep_cache=bool(data.get("keep_cache", True)), extra=_str(data, "extra"),
    )  # fmt: skip


def _entry_from_dict(data: object) -> LoreEntry:
    if not isinstance(data, dict):
        raise ValueError("each lorebook entry must be a table")
    content = data.get("content")
    if not isinstance(content, str):
        raise ValueError("a lorebook entry needs 'content' text")
    return LoreEntry(
        content=content.strip(), keys=_keys(data, "keys"), secondary_keys=_keys(data, "secondary_keys"),
        logic=_choice(data, "logic", LOGICS), constant=bool(data.get("constant", False)),
        enabled=bool(data.get("enabled", True)), case_sensitive=bool(data.get("case_sensitive", False)),
        whole_words=bool(data.get("whole_words", False)), order=_int(data, "order", 100, -(10**6), 10**6),
        priority=_int(data, "priority", 10, -(10**6), 10**6), position=_choice(data, "position", POSITIONS),
        depth=_int(data, "depth", 4, 0, MAX_DEPTH), name=_str(data, "name"), extra=_str(data, "extra"),
    )  # fmt: skip


def _keys(data: dict, name: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_KEYS:
        raise ValueError(f"lorebook '{name}' must be a list of at most {MAX_KEYS} texts")
    return tuple(str(k).strip() for k in value if isinstance(k, str) and k.strip())


def _choice(data: dict, name: str, allowed: tuple) -> Any:
    value = data.get(name, allowed[-1] if name == "position" else allowed[0])
    if value not in allowed:
        raise ValueError(f"lorebook '{name}' must be one of {', '.join(allowed)}")
    return value


def _int(data: dict, name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"lorebook '{name}' must be a number")
    return max(low, min(high, int(value)))


def _str(data: dict, name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


def entry_summary(entry: LoreEntry) -> str:
    """One line for lists: its label or first key, and where it goes."""
    label = entry.name or (", ".join(entry.keys[:3]) if entry.keys else entry.content[:30])
    place = f"depth {entry.depth}" if entry.position == "at_depth" else entry.position.replace("_", " ")
    kind = "always" if entry.constant else "keys: " + ", ".join(entry.keys[:4])
    off = "" if entry.enabled else " (off)"
    return f"{label} — {kind} — {place}{off}"
