"""One way in for every frame file: which format a file is (by its bytes, its suffix, its fields),
read by its reader (``importers``: cards, Kobold scenarios, prompt files, text-generation-webui
characters; ``preset_import``: SillyTavern's presets), then the last check every import passes
(``import_check``). The readers never import this module, so nothing here is circular."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from app.errors import TemplateError
from app.scaffold.import_check import checked
from app.scaffold.importers import (
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    PNG_SIGNATURE,
    V1_CARD_FIELDS,
    Imported,
    card_from_png,
    card_to_template,
    decode_text,
    json_object,
    kobold_to_template,
    prompt_file_to_template,
    textgen_yaml_to_template,
)
from app.scaffold.preset_import import (
    SYSTEM_PROMPT_FIELDS,
    context_preset_to_template,
    instruct_preset_to_template,
    system_prompt_to_template,
)
from app.scaffold.template import template_from_dict, tomllib


def import_file(path: Path) -> Imported:
    """Read ``path`` as whichever supported format it is; one-line TemplateError if none."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TemplateError(f"{path.name} is {size / 1e6:.0f} MB; a frame file may be at most 20 MB.")
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    return import_bytes(data, path.name)


def import_bytes(data: bytes, filename: str) -> Imported:
    """Whatever the parsers meet in hostile data ends in one TemplateError naming the file. Every
    format's result passes one last check: no chat markup, and no macro left for the model."""
    try:
        return checked(_import_bytes(data, filename), filename)
    except RecursionError:
        raise TemplateError(f"{filename} is nested too deeply to be a frame file.") from None
    except (OverflowError, StopIteration, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise TemplateError(
            f"{filename} could not be read as a frame ({type(exc).__name__}: {exc})."
        ) from None


def _import_bytes(data: bytes, filename: str) -> Imported:
    stem = Path(filename).stem
    if not data.strip():
        raise TemplateError(f"{filename} is empty.")
    if data.startswith(PNG_SIGNATURE):
        return replace(card_to_template(card_from_png(data, filename), stem, "PNG "), image=data)
    if len(data) > MAX_TEXT_BYTES:
        raise TemplateError(f"{filename} is larger than 1 MB of text; that is not a frame file.")
    text = decode_text(data, filename)
    suffix = Path(filename).suffix.lower()
    if suffix == ".toml":
        return _from_toml(text, stem)
    if suffix in (".yaml", ".yml"):
        return textgen_yaml_to_template(text, stem)
    if text.lstrip().startswith(("{", "[")):
        return _from_json(json_object(text, filename), stem)
    return prompt_file_to_template(text, stem)


def _from_json(data: dict, stem: str) -> Imported:
    if "spec" in data or {"first_mes", "mes_example"} & data.keys() or "char_name" in data:
        return card_to_template(data, stem)
    if isinstance(data.get("name"), str) and len(V1_CARD_FIELDS & data.keys()) >= 2:
        return card_to_template(data, stem)  # a V1 card written without greeting or examples
    if "story_string" in data:
        return context_preset_to_template(data, stem)
    if {"input_sequence", "output_sequence"} & data.keys():
        return instruct_preset_to_template(data, stem)
    if "chatopponent" in data or ("memory" in data and "prompt" in data) or "savedsettings" in data:
        return kobold_to_template(data, stem)
    if "content" in data and isinstance(data.get("content"), str) and set(data) <= SYSTEM_PROMPT_FIELDS:
        return system_prompt_to_template(data, stem)
    if isinstance(data.get("entries"), dict | list):
        raise TemplateError(
            "This is a lorebook (World Info), not a frame: add it to a frame in the Frame panel's "
            "Lorebook tab, or with 'basechat templates lore TEMPLATE FILE'."
        )
    raise TemplateError(
        "This JSON is not a character card, a SillyTavern preset or a Kobold scenario "
        "(none of their fields are there)."
    )


def _from_toml(text: str, stem: str) -> Imported:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{stem}.toml is not valid TOML: {exc}.") from None
    return Imported(template_from_dict(data, default_name=stem), "Basechat template")
