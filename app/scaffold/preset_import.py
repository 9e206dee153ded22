"""SillyTavern's presets as templates: context presets (a story string), instruct presets (speaker
sequences) and system-prompt presets, and one preset combined with a system prompt. Split from
``importers`` (whose field helpers it uses), which reads a file and hands presets on to here.
"""

from __future__ import annotations

import re
from dataclasses import replace

from app.errors import TemplateError
from app.scaffold import handlebars
from app.scaffold.importers import Imported, name_slug, one_line, text_of, unused_settings
from app.scaffold.macros import clean_imported, markup_in
from app.scaffold.template import Template

_CONTEXT_USED = {"story_string", "example_separator", "chat_start", "name"}
_INSTRUCT_USED = {"input_sequence", "output_sequence", "stop_sequence", "system_prompt", "name"}


def context_preset_to_template(data: dict, stem: str) -> Imported:
    """A context preset is a recipe for a card; alone it gives the frame's shape: its story string
    with neutral values, and the separators between example chats and the real one."""
    story = text_of(data, "story_string")
    values = {"char": "Assistant", "user": "User", "system": "", "description": "", "personality": "",
              "scenario": "", "persona": "", "wiexamples": "", "wibefore": "", "wiafter": ""}  # fmt: skip
    rendered = handlebars.render(story, values)
    notes = unused_settings(data, _CONTEXT_USED)
    if rendered.unsupported:
        notes.append("template tags left out: " + ", ".join(rendered.unsupported))
    name = text_of(data, "name") or stem
    preamble = rendered.text.strip() or "A conversation between User and Assistant."
    template = Template(
        name=name_slug(name), preamble=preamble, title=name,
        example_separator=one_line(text_of(data, "example_separator")),
        chat_start=one_line(text_of(data, "chat_start")),
    )  # fmt: skip
    return Imported(template, "SillyTavern context preset", tuple(notes))


def instruct_preset_to_template(data: dict, stem: str) -> Imported:
    """Instruct sequences become speaker labels where they are labels ("### Instruction:"). Story-
    and Adventure-style presets, whose sequences are empty or punctuation, use the speakers' names
    as labels; sequences of chat markup cannot be labels, and the import says so."""
    notes = unused_settings(data, _INSTRUCT_USED)
    user = _sequence_label(text_of(data, "input_sequence"), "input_sequence", "User", notes)
    assistant = _sequence_label(text_of(data, "output_sequence"), "output_sequence", "Assistant", notes)
    if (user == "User") != (assistant == "Assistant"):
        # One side only a heading (WizardLM: no input sequence, "### Response:"): a transcript of
        # "User:" and "### Response:" names no one; both speakers go by their names.
        notes.append(f"only one side has a speaker label ('{user if user != 'User' else assistant}'), "
                     "so both speakers use their names")  # fmt: skip
        user, assistant = "User", "Assistant"
    stop = text_of(data, "stop_sequence").strip()
    name = text_of(data, "name") or stem
    preamble = text_of(data, "system_prompt").strip() or f"A conversation between {user} and {assistant}."
    template = Template(
        name=name_slug(name), preamble=preamble, user_name=user, assistant_name=assistant,
        extra_stops=(stop,) if stop and not markup_in(stop) else (), title=name,
    )  # fmt: skip
    return Imported(template, "SillyTavern instruct preset", tuple(notes))


def _sequence_label(sequence: str, field_name: str, name: str, notes: list[str]) -> str:
    found = markup_in(sequence) or ("[INST" if "[INST" in sequence.upper() else "")
    if found:
        raise TemplateError(
            f"{field_name} {sequence.strip()[:40]!r} is chat markup ('{found}'), not a speaker label; "
            "Basechat's transcript needs 'Name:' turns, so this instruct preset cannot be used."
        )
    label = (
        clean_imported(sequence, {"user": "User", "char": "Assistant"}, []).strip().removesuffix(":").strip()
    )
    if label and "\n" not in label and ":" not in label and re.search(r"\w", label) and len(label) <= 40:
        return label
    notes.append(f"{field_name} {sequence[:20]!r} is not a speaker label, so the name '{name}' is used")
    return name


SYSTEM_PROMPT_FIELDS = {"name", "content", "post_history"}


def system_prompt_to_template(data: dict, stem: str) -> Imported:
    """SillyTavern's system-prompt preset (``name``, ``content``): a preamble, alone or put into
    an instruct or context preset imported with it (``combine``)."""
    content = text_of(data, "content").strip()
    if not content:
        raise TemplateError(f"The system prompt '{text_of(data, 'name') or stem}' is empty.")
    name = text_of(data, "name") or stem
    notes = unused_settings(data, {"name", "content"})
    template = Template(name=name_slug(name), preamble=content, title=name)
    return Imported(template, "SillyTavern system prompt", tuple(notes))


def combine(imports: list[Imported]) -> Imported:
    """Several files imported together: a system-prompt preset gives its text as the other's
    preamble (SillyTavern keeps the two apart since its instruct presets lost their prompt)."""
    if len(imports) == 1:
        return imports[0]
    systems = [i for i in imports if i.kind == "SillyTavern system prompt"]
    others = [i for i in imports if i.kind != "SillyTavern system prompt"]
    if len(imports) != 2 or len(systems) != 1:
        raise TemplateError("Import one file at a time, or a preset together with one system-prompt preset.")
    base, system = others[0], systems[0]
    template = replace(base.template, preamble=system.template.preamble)
    return Imported(template, f"{base.kind} with {system.kind}", base.notes + system.notes, base.image)
