"""Macros: the few placeholders a frame keeps until its prompt is rendered, and the clean-up that
makes sure no other macro, and no chat markup, from an imported file ever reaches the model.

Kept until rendering (so a persona's name or today's date is the current one): ``{{user}}``,
``{{char}}``, ``{{date}}``, ``{{time}}``, ``{{weekday}}``, ``{{isodate}}``, ``{{isotime}}``,
``{{year}}``. A chat fixes its moment when it opens, so its prompt prefix stays cached.

At import every other macro a supported format defines is filled in (the card's own fields,
``{{newline}}``, comments…) or left out and named in the import's notes; chat-markup tokens are
refused, since a base model's transcript is plain ``Name:`` turns.
"""

from __future__ import annotations

import re
from datetime import datetime

RENDERED = ("user", "char", "date", "time", "weekday", "isodate", "isotime", "year")
_RENDER = re.compile(r"\{\{\s*(" + "|".join(RENDERED) + r")\s*\}\}", re.IGNORECASE)
_ANY_MACRO = re.compile(r"\{\{(?:(?!\{\{|\}\}).){0,200}?\}\}", re.DOTALL)
_LEGACY = {  # older spellings → the kept ones
    r"<BOT>": "{{char}}", r"<USER>": "{{user}}", r"\[\[DATE_YEAR\]\]": "{{year}}",
    r"\[\[DATE_TIME\]\]": "{{time}}", r"\[\[DATE\]\]": "{{date}}", r"\[\[USER_NAME\]\]": "{{user}}",
    r"\[\[AI_NAME\]\]": "{{char}}", r"\{\{\s*(?:charIfNotGroup|bot)\s*\}\}": "{{char}}",
}  # fmt: skip
_FIXED = {"newline": "\n", "noop": "", "original": "", "trim": "\x00trim\x00"}
MARKUP = re.compile(
    r"<\|[^\n]{0,40}?\|>|<\||\[/?INST\]|<</?SYS>>|</?start_of_turn>|</?end_of_turn>|</s>|<bos>|<eos>",
    re.IGNORECASE,
)
LEFTOVERS = re.compile(r"\{\{|\}\}|\[\[|\]\]|<START>", re.IGNORECASE)


def expand(text: str, user: str, char: str, now: datetime) -> str:
    """Fill the kept macros: the speakers' names and the chat's moment."""
    if "{{" not in text:
        return text
    values = {
        "user": user, "char": char, "date": now.strftime("%B %d, %Y"), "time": now.strftime("%H:%M"),
        "weekday": now.strftime("%A"), "isodate": now.strftime("%Y-%m-%d"),
        "isotime": now.strftime("%H:%M"), "year": now.strftime("%Y"),
    }  # fmt: skip
    return _RENDER.sub(lambda m: values[m.group(1).lower()], text)


def clean_imported(text: str, values: dict[str, str], dropped: list[str]) -> str:
    """``text`` from a file with its macros resolved: ``values`` (lower-case names: a card's own
    fields) filled in, the kept ones in one spelling, any other left out and added to ``dropped``."""
    for pattern, kept in _LEGACY.items():
        text = re.sub(pattern, kept, text, flags=re.IGNORECASE)
    for _ in range(8):  # a macro may hold or make another; each pass removes a layer
        replaced = _ANY_MACRO.sub(lambda m: _resolve(m.group(0), values, dropped), text)
        if replaced == text:
            break
        text = replaced
    text = re.sub(r"\s*\x00trim\x00\s*", "", text)
    while LEFTOVERS.search(text):  # removing "{{" from "[{{[" makes a new "[["; each pass shortens
        text = LEFTOVERS.sub(lambda m: left_out(m.group(0), dropped), text)
    return _restore_kept(text)


def _resolve(macro: str, values: dict[str, str], dropped: list[str]) -> str:
    inner = macro[2:-2].strip()
    name = inner.lower()
    if name in values:
        return values[name]
    if name in RENDERED:
        return "\x01" + name + "\x02"  # kept; protected from the leftover pass below
    if name in _FIXED:
        return _FIXED[name]
    if inner.startswith(("//", "!")):
        return ""
    return left_out(macro, dropped)


def left_out(found: str, dropped: list[str]) -> str:
    """Nothing in place of ``found``, which is named (shortened) in ``dropped`` once."""
    label = found if len(found) <= 40 else found[:37] + "…"
    if label not in dropped:
        dropped.append(label)
    return ""


def _restore_kept(text: str) -> str:
    """The kept macros, protected while leftovers were removed, back in their one spelling."""
    return re.sub("\x01([a-z]+)\x02", r"{{\1}}", text)


def markup_in(text: str) -> str:
    """The first chat-markup token in ``text`` ("" when there is none)."""
    found = MARKUP.search(text)
    return found.group(0) if found else ""
