"""Cards out of templates: a template imported from a card gives that card back with only what was
edited in Basechat changed (V3 stays V3, unknown fields and ``extensions`` untouched, the lorebook's
entries with their own fields); any other template becomes a Character Card V2. Names stay words:
nothing is ever turned into a macro.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import replace

from app.scaffold.import_check import checked
from app.scaffold.importers import PNG_SIGNATURE, card_to_template
from app.scaffold.lore_import import book_to_card, table
from app.scaffold.template import Template


def template_to_card(template: Template) -> dict:
    """The template as a character card. One imported from a card gives that card back with only
    what was edited here changed (V3 stays V3, unknown fields and ``extensions`` untouched); any
    other becomes a Character Card V2. Names stay words: nothing is turned into a macro."""
    origin = _origin_card(template)
    if origin is None:
        return {"spec": "chara_card_v2", "spec_version": "2.0", "data": _new_card_data(template)}
    imported = checked(card_to_template(json.loads(template.origin), template.name), template.name).template
    data = origin["data"] if "spec" in origin else origin
    for edit in _CARD_EDITS:
        edit(data, imported, template)
    return origin


def _origin_card(template: Template) -> dict | None:
    try:
        card = json.loads(template.origin) if template.origin else None
    except json.JSONDecodeError:
        return None
    return card if isinstance(card, dict) and isinstance(card.get("data", card), dict) else None


def _new_card_data(template: Template) -> dict:
    data = {
        "name": template.assistant_name, "description": template.preamble, "personality": "",
        "scenario": "", "first_mes": template.greeting, "mes_example": _mes_example(template),
        "creator_notes": template.description, "system_prompt": "", "post_history_instructions": "",
        "alternate_greetings": list(template.alternate_greetings), "tags": [],
        "creator": "", "character_version": "", "extensions": {},
    }  # fmt: skip
    for edit in (_edit_lorebook, _edit_note):
        edit(data, replace(template, lorebook=None, authors_note=""), template)
    return data


def _mes_example(template: Template) -> str:
    blocks: dict[int, list[str]] = {}
    for ex in template.examples:
        blocks.setdefault(ex.block, []).append(
            f"{template.user_name}: {ex.user}\n{template.assistant_name}: {ex.assistant}"
        )
    return "".join("<START>\n" + "\n".join(lines) + "\n" for lines in blocks.values())


def _edit_name(data: dict, imported: Template, template: Template) -> None:
    if template.assistant_name != imported.assistant_name:
        data["nickname" if data.get("nickname") else "name"] = template.assistant_name


def _edit_preamble(data: dict, imported: Template, template: Template) -> None:
    """An edited preamble is the description; the parts it was made of are in it now."""
    if template.preamble != imported.preamble:
        data.update(description=template.preamble, personality="", scenario="", system_prompt="")


def _edit_greetings(data: dict, imported: Template, template: Template) -> None:
    def greetings(t: Template) -> set[str]:
        return {t.greeting, *t.alternate_greetings} - {""}

    if greetings(template) != greetings(imported):
        data.update(first_mes=template.greeting, alternate_greetings=list(template.alternate_greetings))


def _edit_examples(data: dict, imported: Template, template: Template) -> None:
    if template.examples != imported.examples:
        data["mes_example"] = _mes_example(template)


def _edit_lorebook(data: dict, imported: Template, template: Template) -> None:
    if template.lorebook != imported.lorebook:
        if template.lorebook is None or not template.lorebook.entries:
            data.pop("character_book", None)
        else:
            data["character_book"] = book_to_card(template.lorebook)


def _edit_note(data: dict, imported: Template, template: Template) -> None:
    """The author's note travels as SillyTavern's character's note (``extensions.depth_prompt``)."""
    note = (template.authors_note, template.authors_note_depth)
    if note != (imported.authors_note, imported.authors_note_depth) and template.authors_note:
        extensions = table(data, "extensions")
        prompt = {"prompt": template.authors_note, "depth": template.authors_note_depth, "role": "system"}
        data["extensions"] = extensions | {"depth_prompt": prompt}


def _edit_creator_notes(data: dict, imported: Template, template: Template) -> None:
    if template.description != imported.description:
        data["creator_notes"] = template.description


_CARD_EDITS = (_edit_name, _edit_preamble, _edit_greetings, _edit_examples, _edit_lorebook, _edit_note,
               _edit_creator_notes)  # fmt: skip


def card_png(card: dict, picture: bytes = b"") -> bytes:
    """The card as a PNG, the way SillyTavern shares them: the character's picture (a plain square
    when it has none) with the card as base64 JSON in a ``chara`` text chunk (and ``ccv3`` for a
    V3 card). Card chunks the picture already carried are replaced, never doubled."""
    image = picture if picture.startswith(PNG_SIGNATURE) else _plain_png(256)
    encoded = base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))
    keywords = ["chara"] + (["ccv3"] if card.get("spec") == "chara_card_v3" else [])
    added = b"".join(_png_chunk(b"tEXt", k.encode("latin-1") + b"\0" + encoded) for k in keywords)
    kept = [c for c in _png_chunks(image) if not _is_card_chunk(c)]
    return PNG_SIGNATURE + b"".join(kept[:-1]) + added + kept[-1]


def _png_chunks(image: bytes) -> list[bytes]:
    """The picture's chunks as they are (length, type, body, CRC), up to and with IEND."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 12 <= len(image):
        (length,) = struct.unpack(">I", image[offset : offset + 4])
        chunks.append(image[offset : offset + 12 + length])
        if image[offset + 4 : offset + 8] == b"IEND":
            return chunks
        offset += 12 + length
    return [*chunks, _png_chunk(b"IEND", b"")]  # a picture cut short still ends


def _is_card_chunk(chunk: bytes) -> bool:
    return chunk[4:8] == b"tEXt" and chunk[8:].split(b"\0", 1)[0].lower() in (b"chara", b"ccv3")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _plain_png(side: int) -> bytes:
    """A square of one soft grey, for a card with no picture of its own."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = (b"\0" + b"\xc8\xcc\xd4" * side) * side
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )
