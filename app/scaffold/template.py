"""Conversation templates: the dialogue frame a base model is asked to continue.

A template is plain data (TOML in ``resources/templates``), never code: nothing
from a model file or a template is ever evaluated. Basechat renders no Jinja.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import TemplateError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Exchange:
    """One example question and answer shown to the model before the real conversation."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Template:
    name: str
    preamble: str
    user_name: str = "User"
    assistant_name: str = "Assistant"
    examples: tuple[Exchange, ...] = ()
    extra_stops: tuple[str, ...] = ()
    title: str = ""
    description: str = ""
    source: Path | None = field(default=None, compare=False)

    @property
    def speaker_names(self) -> tuple[str, str]:
        return (self.user_name, self.assistant_name)

    def stop_strings(self) -> list[str]:
        """A new line that opens any speaker's turn ends the reply."""
        stops = [f"\n{name}:" for name in self.speaker_names]
        return stops + [s for s in self.extra_stops if s not in stops]


def templates_dir() -> Path:
    from app.paths import resources_dir

    return resources_dir() / "templates"


def user_templates_dir() -> Path:
    from app.paths import data_dir

    return data_dir() / "templates"


def available_templates() -> list[str]:
    """Shipped templates, then the user's own (saved from the window)."""
    folders = (templates_dir(), user_templates_dir())
    return sorted({p.stem for folder in folders for p in folder.glob("*.toml")})


def load_template(name_or_path: str | Path) -> Template:
    """Load a template by name (the user's own first), or a template file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        own = user_templates_dir() / f"{name_or_path}.toml"
        path = own if own.is_file() else templates_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(available_templates())
        raise TemplateError(f"No template '{name_or_path}' (shipped templates: {known}).")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"Template {path.name} cannot be read: {exc}") from None
    return template_from_dict(data, default_name=path.stem, source=path)


def template_from_dict(data: dict, default_name: str = "custom", source: Path | None = None) -> Template:
    """Validate loaded data so a bad file fails with one clear line, not a KeyError later."""
    try:
        examples = tuple(Exchange(_text(e, "user"), _text(e, "assistant")) for e in data.get("examples", []))
        template = Template(
            name=str(data.get("name", default_name)),
            preamble=_text(data, "preamble"),
            user_name=_name(data.get("user_name", "User")),
            assistant_name=_name(data.get("assistant_name", "Assistant")),
            examples=examples,
            extra_stops=tuple(str(s) for s in data.get("stop", [])),
            title=str(data.get("title", "")),
            description=str(data.get("description", "")),
            source=source,
        )
    except (TypeError, AttributeError, ValueError) as exc:
        raise TemplateError(f"Template '{default_name}' is malformed: {exc}") from None
    if template.user_name.casefold() == template.assistant_name.casefold():
        raise TemplateError(f"Template '{template.name}' uses one name for both speakers.")
    return template


def _text(mapping: dict, key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return value.strip()


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or ":" in value:
        raise ValueError(f"speaker name {value!r} must be one line without ':'")
    return value.strip()


def template_to_toml(template: Template) -> str:
    """Plain TOML; JSON string escapes are valid TOML basic strings."""
    import json

    lines = [
        f"name = {json.dumps(template.name)}",
        f"title = {json.dumps(template.title or template.name)}",
        f"description = {json.dumps(template.description)}",
        f"user_name = {json.dumps(template.user_name)}",
        f"assistant_name = {json.dumps(template.assistant_name)}",
        f"preamble = {json.dumps(template.preamble)}",
        f"stop = {json.dumps(list(template.extra_stops))}",
    ]
    for example in template.examples:
        lines += ["", "[[examples]]", f"user = {json.dumps(example.user)}",
                  f"assistant = {json.dumps(example.assistant)}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def save_user_template(template: Template) -> Path:
    folder = user_templates_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{template.name}.toml"
    path.write_text(template_to_toml(template), encoding="utf-8")
    return path
