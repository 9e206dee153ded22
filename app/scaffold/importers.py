"""Reading the frames people already own into Basechat templates.

Character cards (TavernAI / SillyTavern "Character Card" V1, V2 and V3, as JSON or as a PNG
whose ``chara``/``ccv3`` text chunk holds base64 JSON), SillyTavern context and instruct
presets, llama.cpp prompt files, text-generation-webui character YAML, Kobold Lite chat
scenarios, and Basechat's own TOML. Everything is read as data: nothing is evaluated, HTML
stays text, and a PNG is walked chunk by chunk without decoding its image. Whatever a format
holds that Basechat does not use is named in ``Imported.notes``, never dropped silently.

Only the public field names of these formats are used here; no other project's code or data.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import TemplateError
from app.scaffold.lore_import import (
    book_from_card,
    book_from_kobold,
    table,
)
from app.scaffold.macros import clean_imported, left_out
from app.scaffold.template import Exchange, Template

MAX_FILE_BYTES = 20 * 1024 * 1024  # a card's PNG can be a large picture
MAX_TEXT_BYTES = 1024 * 1024  # the card or preset itself
MAX_FIELD_CHARS = 32_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUPPORTED_CARD_MAJOR = 3


@dataclass(frozen=True)
class Imported:
    template: Template
    kind: str  # which format it was read as
    notes: tuple[str, ...] = ()  # what was not used, or changed
    image: bytes = b""  # a PNG card's picture: the character's avatar once saved


def decode_text(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TemplateError(f"{filename} is neither a PNG card nor UTF-8 text.") from None


def json_object(text: str, filename: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{filename} is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{filename} holds JSON, but not an object of fields.")
    return data


V1_CARD_FIELDS = {"description", "personality", "scenario"}  # two of them: a V1 card


# -- character cards ---------------------------------------------------------------------


def card_from_png(data: bytes, filename: str) -> dict:
    """The card JSON from a PNG's ``ccv3`` (preferred) or ``chara`` tEXt chunk."""
    chunks = _png_text_chunks(data)
    encoded = chunks.get("ccv3") or chunks.get("chara")
    if encoded is None:
        raise TemplateError(f"{filename} is a PNG without a character card in it.")
    try:
        text = base64.b64decode(encoded, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TemplateError(f"{filename}: the card chunk is not base64-encoded UTF-8 JSON.") from None
    if len(text) > MAX_TEXT_BYTES:
        raise TemplateError(f"{filename}: the card inside is larger than 1 MB.")
    return json_object(text, filename)


def _png_text_chunks(data: bytes) -> dict[str, bytes]:
    """Keyword → text of every tEXt chunk, reading lengths and types only (no image decoding)."""
    found: dict[str, bytes] = {}
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if len(body) < length:
            break  # a truncated file: use what was read
        if kind == b"tEXt" and b"\0" in body:
            keyword, _, text = body.partition(b"\0")
            found[keyword.decode("latin-1").lower()] = text
        if kind == b"IEND":
            break
        offset += 12 + length
    return found


_CARD_USED = {"name", "nickname", "description", "personality", "scenario", "first_mes", "mes_example",
              "alternate_greetings", "system_prompt", "creator_notes", "character_book", "char_name",
              "char_persona", "world_scenario", "char_greeting", "example_dialogue"}  # fmt: skip
CARD_CHAT_START = "***"  # SillyTavern's line between the example chats and the real one


def card_to_template(card: dict, stem: str, container: str = "") -> Imported:
    """Character Card V1/V2/V3 → a template: the character speaks as the assistant (by its V3
    ``nickname`` when it has one). The card itself is kept in ``origin`` for exporting."""
    version, data = _card_version(card)
    notes: list[str] = []
    name = _speaker(text_of(data, "nickname") or text_of(data, "name") or text_of(data, "char_name") or stem,
                    "Character")  # fmt: skip
    user = "User" if name.casefold() != "user" else "You"
    fill = _card_filler(data, name, user, notes)
    examples, dropped = _example_blocks(
        text_of(data, "mes_example") or text_of(data, "example_dialogue"), user, name, fill
    )
    if dropped:
        notes.append(f"{dropped} example line(s) without a partner were left out")
    greetings = [fill(g) for g in [text_of(data, "first_mes") or text_of(data, "char_greeting"),
                                   *_list_field(data, "alternate_greetings")] if g.strip()]  # fmt: skip
    note, depth = _depth_prompt(data, fill)
    template = Template(
        name=name_slug(name), preamble=_card_preamble(data, name, fill), user_name=user, assistant_name=name,
        examples=tuple(examples), title=text_of(data, "name") or name,
        description=_plain(text_of(data, "creator_notes"))[:300],
        greeting=greetings[0] if greetings else "", alternate_greetings=tuple(greetings[1:]),
        example_separator=CARD_CHAT_START if len({e.block for e in examples}) > 1 else "",
        chat_start=CARD_CHAT_START if examples and greetings else "",
        lorebook=book_from_card(data.get("character_book"), notes), authors_note=note,
        authors_note_depth=depth, origin=json.dumps(card, ensure_ascii=False),
    )  # fmt: skip
    return Imported(
        template, f"{container}Character Card {version}", tuple(notes + _card_leftovers(card, data))
    )


def _card_filler(data: dict, name: str, user: str, notes: list[str]):
    """The card's macros filled from its own fields; any other is left out and named."""
    values = {"char": name, "user": user, "persona": "", "original": "",
              **{k: text_of(data, k) for k in ("description", "personality", "scenario")},
              "mesexamples": text_of(data, "mes_example"), "charversion": text_of(data, "character_version"),
              "char_version": text_of(data, "character_version")}  # fmt: skip
    return macro_filler(values, notes)


def macro_filler(values: dict[str, str], notes: list[str]):
    """A function that cleans one text's macros, naming every one it leaves out in ``notes``."""
    dropped: list[str] = []

    def fill(text: str) -> str:
        cleaned = clean_imported(text, values, dropped)
        _note_dropped(dropped, notes)
        return cleaned

    return fill


_LEFT_OUT = "left out (not understood here): "


def _note_dropped(dropped: list[str], notes: list[str]) -> None:
    """One note names every macro left out, however many passes found them."""
    before = next((n for n in notes if n.startswith(_LEFT_OUT)), "")
    items = list(dict.fromkeys([*filter(None, before[len(_LEFT_OUT) :].split(", ")), *dropped]))
    notes[:] = [n for n in notes if n != before]
    if items:
        notes.append(_LEFT_OUT + ", ".join(items))


def _depth_prompt(data: dict, fill) -> tuple[str, int]:
    """SillyTavern's character's note (``extensions.depth_prompt``): the chat's author's note."""
    extensions = data.get("extensions")
    prompt = extensions.get("depth_prompt") if isinstance(extensions, dict) else None
    if not isinstance(prompt, dict) or not isinstance(prompt.get("prompt"), str):
        return "", 4
    depth = prompt.get("depth", 4)
    depth = int(depth) if isinstance(depth, int | float) and not isinstance(depth, bool) else 4
    return " ".join(fill(text_of(prompt, "prompt")).split()), max(0, min(depth, 1000))


def _card_leftovers(card: dict, data: dict) -> list[str]:
    """What the card holds that Basechat does not use: named, and kept for exporting it again."""
    kept = [k for k, v in data.items() if k not in _CARD_USED and v not in (None, "", [], {}, False)]
    kept += [k for k in card if k not in ("spec", "spec_version", "data") and card is not data]
    notes = ["kept for export, not used: " + ", ".join(kept)] if kept else []
    extensions = data.get("extensions")
    world = extensions.get("world") if isinstance(extensions, dict) else None
    if isinstance(world, str) and world.strip():
        notes.append(f"the card names a lorebook '{world.strip()[:60]}' that is not inside it; "
                     "import that World Info file in the Frame panel's Lorebook tab")  # fmt: skip
    return notes


def _card_version(card: dict) -> tuple[str, dict]:
    spec = str(card.get("spec", ""))
    if not spec:
        return "V1", card
    version = str(card.get("spec_version", ""))
    major = re.match(r"\d+", version)
    if spec not in ("chara_card_v2", "chara_card_v3") or (
        major and int(major.group()) > _SUPPORTED_CARD_MAJOR
    ):
        raise TemplateError(f"This card says it is '{spec}' {version}; Basechat reads cards up to V3.")
    data = card.get("data")
    if not isinstance(data, dict):
        raise TemplateError("This card has no 'data' object.")
    return ("V3" if spec.endswith("v3") else "V2"), data


def _card_preamble(data: dict, name: str, fill) -> str:
    """The card's own words, in the order SillyTavern's default story string puts them."""
    system = fill(text_of(data, "system_prompt"))
    scenario = text_of(data, "scenario") or text_of(data, "world_scenario")
    parts = [
        system,
        fill(text_of(data, "description") or text_of(data, "char_persona")),
        f"{name}'s personality: {fill(text_of(data, 'personality'))}" if text_of(data, "personality") else "",
        f"Scenario: {fill(scenario)}" if scenario else "",
    ]
    text = "\n".join(p.strip() for p in parts if p.strip())
    return text or f"A conversation between User and {name}."


def parse_examples(text: str, user: str, assistant: str) -> tuple[Exchange, ...]:
    """Example chats typed as "Name: …" lines (turns may span lines; ``<START>`` between chats)."""
    return tuple(_example_blocks(text, user, assistant)[0])


def _example_blocks(text: str, user: str, name: str, fill=None) -> tuple[list[Exchange], int]:
    """``<START>``-separated example chats → exchanges, and how many lines had no partner. ``fill``
    cleans each chat's macros once it is split off."""
    exchanges: list[Exchange] = []
    dropped = 0
    for block, chunk in enumerate(re.split(r"<START>", text, flags=re.IGNORECASE)):
        turns = _speaker_turns(fill(chunk) if fill else chunk, user, name)
        pairs, left = _pair_turns(turns)
        exchanges += [Exchange(u, a, block) for u, a in pairs]
        dropped += left
    return exchanges, dropped


def _speaker_turns(text: str, user: str, name: str) -> list[tuple[str, str]]:
    """(role, text) for each "Name: …" line; other lines continue the turn before them."""
    label = re.compile(rf"^\s*({re.escape(user)}|{re.escape(name)})\s*:\s?(.*)$", re.IGNORECASE)
    turns: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = label.match(line)
        if match:
            role = "user" if match.group(1).casefold() == user.casefold() else "assistant"
            turns.append((role, match.group(2)))
        elif turns:
            turns[-1] = (turns[-1][0], turns[-1][1] + "\n" + line)
    return [(role, body.strip()) for role, body in turns if body.strip()]


def _pair_turns(turns: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """Consecutive turns of one speaker are joined; each user turn pairs with the reply after it."""
    merged: list[tuple[str, str]] = []
    for role, body in turns:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + "\n" + body)
        else:
            merged.append((role, body))
    pairs, left, index = [], 0, 0
    while index < len(merged):
        if merged[index][0] == "user" and index + 1 < len(merged):
            pairs.append((merged[index][1], merged[index + 1][1]))
            index += 2
        else:
            left, index = left + 1, index + 1
    return pairs, left


def unused_settings(data: dict, used: set[str]) -> list[str]:
    """Settings with a value that Basechat has no use for, named so nothing vanishes unseen."""
    unused = sorted(k for k, v in data.items() if k not in used and v not in (None, "", False, [], {}))
    return ["not used: " + ", ".join(unused)] if unused else []


# -- llama.cpp prompt files, text-generation-webui characters, Kobold Lite scenarios ------


def prompt_file_to_template(text: str, stem: str) -> Imported:
    """A plain transcript: the speakers are found from its last lines, the text before the
    first turn is the preamble, and the turns become example exchanges."""
    notes: list[str] = []
    text = text.replace("[[USER_NAME]]", "User").replace("[[AI_NAME]]", "Assistant")
    text = text.replace("[[DATE_YEAR]]", "{{year}}").replace("[[DATE_TIME]]", "{{time}}")  # when a chat opens
    user, assistant = _speakers_from_end(text)
    lines = text.rstrip().splitlines()
    labels = re.compile(rf"^({re.escape(user)}|{re.escape(assistant)}):")
    first = next((i for i, line in enumerate(lines) if labels.match(line)), None)
    if first is None:
        raise TemplateError(f"No line of {stem} starts with '{user}:' or '{assistant}:' at its very start.")
    preamble = "\n".join(lines[:first]).strip()
    turns = _speaker_turns("\n".join(lines[first:]), user, assistant)
    pairs, dropped = _pair_turns(turns)
    if dropped:
        notes.append(f"{dropped} turn(s) without a partner were left out")
    template = Template(
        name=name_slug(stem), preamble=preamble or f"A conversation between {user} and {assistant}.",
        user_name=user, assistant_name=assistant, title=stem,
        examples=tuple(Exchange(u, a) for u, a in pairs),
    )  # fmt: skip
    return Imported(template, "llama.cpp prompt file", tuple(notes))


def _speakers_from_end(text: str) -> tuple[str, str]:
    """The last line names whose turn is next (the user); the other speaker is the last
    different "Name:" before it."""
    labels = re.findall(r"^([^\s:][^:\n]{0,39}):", text, flags=re.MULTILINE)
    if len(set(labels)) < 2:
        raise TemplateError("This text has no 'Name: …' turns of two speakers; it is not a prompt file.")
    user = labels[-1]
    assistant = next(label for label in reversed(labels) if label != user)
    return _speaker(user, "User"), _speaker(assistant, "Assistant")


def textgen_yaml_to_template(text: str, stem: str) -> Imported:
    """text-generation-webui: ``name``, ``greeting``, ``context`` (with {{user}}:/{{char}}: lines)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{stem}: not valid YAML ({str(exc).splitlines()[0]}).") from None
    if isinstance(data, dict) and {"instruction_template", "turn_template"} & data.keys():
        raise TemplateError(
            f"{stem} is a text-generation-webui instruction template (an instruct model's chat markup); "
            "Basechat reads its characters, which have a 'name'."
        )
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise TemplateError(f"{stem}: a text-generation-webui character needs a 'name'.")
    name = _speaker(data["name"], "Character")
    notes: list[str] = []
    fill = macro_filler({"char": name, "user": "User"}, notes)
    context = fill(text_of(data, "context"))
    label = re.search(rf"^\s*(User|{re.escape(name)})\s*:", context, flags=re.MULTILINE | re.IGNORECASE)
    preamble = context[: label.start()].strip() if label else context.strip()
    examples, dropped = _example_blocks(context[label.start() :] if label else "", "User", name)
    notes += [f"{dropped} example line(s) without a partner were left out"] if dropped else []
    notes += unused_settings(data, {"name", "greeting", "context"})
    greeting = fill(text_of(data, "greeting")).strip()
    template = Template(
        name=name_slug(name), preamble=preamble or f"A conversation between User and {name}.",
        assistant_name=name, examples=tuple(examples), title=name, greeting=greeting,
    )  # fmt: skip
    return Imported(template, "text-generation-webui character", tuple(notes))


_KOBOLD_USED = {"memory", "prompt", "chatname", "chatopponent", "opmode", "gamestarted", "scenarioname",
                "savedsettings", "authorsnote", "worldinfo", "wisearchdepth"}  # fmt: skip


def kobold_to_template(data: dict, stem: str) -> Imported:
    """Kobold Lite: ``memory`` is the preamble (any turns in it become examples),
    ``chatname``/``chatopponent`` the speakers (also from a save file's ``savedsettings``; the first
    of several opponents), ``prompt`` the opening of the chat, ``authorsnote`` the author's note
    and ``worldinfo`` the lorebook. Its instruct tags (``{{[INPUT]}}``…) open the speakers' turns."""
    settings = table(data, "savedsettings")
    user = _speaker(text_of(data, "chatname") or text_of(settings, "chatname") or "User", "User")
    opponents = (text_of(data, "chatopponent") or text_of(settings, "chatopponent") or "Assistant").split(
        "||$||"
    )
    assistant = _speaker(opponents[0], "Assistant")
    notes = [f"only the first of {len(opponents)} chat opponents is used"] if len(opponents) > 1 else []
    notes += unused_settings(data, _KOBOLD_USED)
    fill = _kobold_filler(user, assistant, notes)
    preamble, examples, dropped = _split_transcript(fill(text_of(data, "memory")), user, assistant)
    if dropped:
        notes.append(f"{dropped} turn(s) without a partner were left out")
    depth = data.get("wisearchdepth", settings.get("wisearchdepth"))
    template = Template(
        name=name_slug(text_of(data, "scenarioname") or stem), title=text_of(data, "scenarioname") or stem,
        preamble=preamble or f"A conversation between {user} and {assistant}.", user_name=user,
        assistant_name=assistant, greeting=_kobold_greeting(fill(text_of(data, "prompt")), user, assistant),
        examples=tuple(examples), authors_note=" ".join(fill(text_of(data, "authorsnote")).split()),
        lorebook=book_from_kobold(data.get("worldinfo"), depth, notes),
    )  # fmt: skip
    return Imported(template, "Kobold Lite scenario", tuple(notes))


def _kobold_filler(user: str, assistant: str, notes: list[str]):
    """Kobold's macros, and its scenarios' ``${…}`` placeholders (a value Kobold Lite asks the
    person for when the scenario opens): left out and named, never shown to the model."""
    turn = {"[input]": f"\n{user}: ", "[output]": f"\n{assistant}: ", "[system]": "\n",
            "[input_end]": "\n", "[output_end]": "\n", "[system_end]": "\n"}  # fmt: skip
    fill = macro_filler({"user": user, "char": assistant, **turn}, notes)
    dropped: list[str] = []

    def without_placeholders(text: str) -> str:
        text = _PLACEHOLDER.sub(lambda m: left_out(m.group(0), dropped), text)
        _note_dropped(dropped, notes)
        return fill(text)

    return without_placeholders


_PLACEHOLDER = re.compile(r"\$\{[^{}\n]{0,200}\}")


def _split_transcript(text: str, user: str, assistant: str) -> tuple[str, list[Exchange], int]:
    """Text before the first "Name:" line, then its turns as example exchanges."""
    label = re.search(
        rf"^\s*({re.escape(user)}|{re.escape(assistant)})\s*:", text, re.MULTILINE | re.IGNORECASE
    )
    if label is None:
        return text.strip(), [], 0
    examples, dropped = _example_blocks(text[label.start() :], user, assistant)
    return text[: label.start()].strip(), examples, dropped


def _kobold_greeting(opening: str, user: str, assistant: str) -> str:
    turns = _speaker_turns(opening, user, assistant)
    return turns[0][1] if len(turns) == 1 and turns[0][0] == "assistant" else opening.strip()


# -- field hygiene ----------------------------------------------------------------------


def text_of(data: dict, key: str) -> str:
    """A text field, checked for type and size: too long is refused, never cut silently."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TemplateError(f"The field '{key}' should be text, not {type(value).__name__}.")
    if len(value) > MAX_FIELD_CHARS:
        raise TemplateError(
            f"The field '{key}' is {len(value):,} characters; at most {MAX_FIELD_CHARS:,} are read."
        )
    return value.replace("\r\n", "\n")


def _list_field(data: dict, key: str) -> list[str]:
    values = data.get(key) or []
    if not isinstance(values, list):
        raise TemplateError(f"The field '{key}' should be a list of texts.")
    return [text_of({key: v}, key) for v in values[:64] if isinstance(v, str)]


def _speaker(name: str, fallback: str) -> str:
    """A name usable as a speaker label: one line, no ':'."""
    cleaned = " ".join(name.replace(":", " ").split())[:40]
    return cleaned or fallback


def one_line(text: str) -> str:
    return " ".join(text.split())


def _plain(text: str) -> str:
    return re.sub(r"<[^>]{0,200}>", "", text).strip()


def name_slug(name: str) -> str:
    """A template name from a character's: its letters in any script (a Cyrillic or Japanese name
    stays itself, where an ASCII-only slug made every one of them "imported")."""
    slug = re.sub(r"[\W_]+", "-", name.lower()).strip("-")
    return slug[:40].strip("-") or "imported"


def save_imported(imported: Imported) -> tuple[Template, Path]:
    """Write the template under a free name; returns it (perhaps renamed) and its file."""
    from app.scaffold.template import available_templates, save_avatar, save_user_template, template_slug

    avatar = save_avatar(imported.image) if imported.image else imported.template.avatar
    named = replace(imported.template, name=template_slug(imported.template.name), avatar=avatar)
    template = unique_name(named, set(available_templates()))
    return template, save_user_template(template)


def unique_name(template: Template, taken: set[str]) -> Template:
    """The template under a name no other template has ("bob", then "bob-2", …)."""
    if template.name not in taken:
        return template
    number = 2
    while f"{template.name}-{number}" in taken:
        number += 1
    return replace(template, name=f"{template.name}-{number}")
