"""Cards out of templates: a template imported from a card gives that card back with only what was
edited in Basechat changed (V3 stays V3, unknown fields and ``extensions`` untouched, the lorebook's
entries with their own fields); any other template becomes a Character Card V2. Names stay words:
nothing is ever turned into a macro.
"""

from __future__ import annotations

import json
from dataclasses import replace

from app.scaffold.import_check import checked
from app.scaffold.importers import card_to_template
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
