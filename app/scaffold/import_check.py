"""The last check every import passes (no chat markup anywhere, no macro left for the model), and
lorebooks read from a file on their own. Split from ``importers``, whose readers it uses.
"""

from __future__ import annotations

import json
from dataclasses import replace

from app.errors import TemplateError
from app.scaffold.importers import (
    MAX_TEXT_BYTES,
    PNG_SIGNATURE,
    Imported,
    card_from_png,
    decode_text,
    macro_filler,
)
from app.scaffold.lore_import import book_from_card, book_from_kobold, book_from_world_info, table
from app.scaffold.lorebook import Lorebook
from app.scaffold.macros import markup_in
from app.scaffold.template import Exchange, Template


def checked(imported: Imported, filename: str) -> Imported:
    """No chat markup anywhere (refused, naming the field), and no macro the prompt would not fill
    (left out and named): what reaches the model is the file's words, never its machinery."""
    notes = list(imported.notes)
    clean = _field_cleaner(macro_filler({}, notes), filename)
    t = imported.template
    for label, name in (("user name", t.user_name), ("assistant name", t.assistant_name)):
        if clean(label, name) != name.strip():
            raise TemplateError(f"{filename}: the {label} {name[:40]!r} is a macro, not a name.")
    examples = [
        Exchange(clean("examples", e.user), clean("examples", e.assistant), e.block) for e in t.examples
    ]
    fallback = f"A conversation between {t.user_name} and {t.assistant_name}."
    template = replace(
        t, preamble=clean("preamble", t.preamble) or fallback,
        examples=tuple(e for e in examples if e.user and e.assistant), greeting=clean("greeting", t.greeting),
        alternate_greetings=tuple(g for g in (clean("greeting", a) for a in t.alternate_greetings) if g),
        example_separator=clean("example separator", t.example_separator),
        chat_start=clean("chat start", t.chat_start), authors_note=clean("author's note", t.authors_note),
        persona=clean("persona", t.persona), memory=clean("memory", t.memory),
        lorebook=_checked_book(t.lorebook, clean),
    )  # fmt: skip
    return replace(imported, template=template, notes=tuple(notes))


def _field_cleaner(fill, filename: str):
    def clean(label: str, text: str) -> str:
        found = markup_in(text)
        if found:
            raise TemplateError(
                f"{filename}: its {label} holds chat markup ('{found}'); Basechat's transcript is plain "
                "'Name:' turns, so this file cannot be used."
            )
        return fill(text).strip()

    return clean


def _checked_book(book, clean):
    if book is None:
        return None
    entries = [replace(e, content=clean("lorebook", e.content)) for e in book.entries]
    return replace(book, entries=tuple(e for e in entries if e.content))


def import_lorebook(data: bytes, filename: str) -> tuple[Lorebook, tuple[str, ...]]:
    """A lorebook from a SillyTavern World Info file, a card's ``character_book``, or Kobold Lite's
    world info (a save file, or its list of entries), checked like any import."""
    try:
        book, notes = _lorebook_from(data, filename)
    except RecursionError:
        raise TemplateError(f"{filename} is nested too deeply to be a lorebook.") from None
    except (OverflowError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise TemplateError(f"{filename} could not be read as a lorebook ({type(exc).__name__}).") from None
    holder = Imported(Template("lore", "lore", lorebook=book), "lorebook", tuple(notes))
    cleaned = checked(holder, filename)
    assert cleaned.template.lorebook is not None
    return cleaned.template.lorebook, cleaned.notes


def _lorebook_from(data: bytes, filename: str) -> tuple[Lorebook, list[str]]:
    if data.startswith(PNG_SIGNATURE):
        parsed: object = card_from_png(data, filename)
    elif len(data) > MAX_TEXT_BYTES:
        raise TemplateError(f"{filename} is larger than 1 MB; that is not a lorebook.")
    else:
        text = decode_text(data, filename)
        parsed = json.loads(text) if text.strip() else None
    notes: list[str] = []
    if isinstance(parsed, list):
        book = book_from_kobold(parsed, None, notes)
    elif isinstance(parsed, dict) and isinstance(parsed.get("entries"), dict | list):
        book = book_from_world_info(parsed, notes)
    elif isinstance(parsed, dict):
        inner = table(parsed, "data") or parsed
        book = book_from_card(inner.get("character_book"), notes) or book_from_kobold(
            parsed.get("worldinfo"), parsed.get("wisearchdepth"), notes
        )
    else:
        book = None
    if book is None or not book.entries:
        raise TemplateError(
            f"{filename} holds no lorebook entries (World Info, a card's book, Kobold world info)."
        )
    return book, notes
