"""Conversation templates: the dialogue frame a base model is asked to continue.

A template is plain data (TOML in ``resources/templates``), never code: nothing
from a model file or a template is ever evaluated. Basechat renders no Jinja.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import TemplateError
from app.paths import is_plain_name, write_atomically
from app.scaffold.lorebook import Lorebook, lorebook_from_dict, lorebook_to_dict

log = logging.getLogger(__name__)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Exchange:
    """One example question and answer shown to the model before the real conversation.
    ``block``: exchanges of one example conversation share a number (cards have several)."""

    user: str
    assistant: str
    block: int = 0


@dataclass(frozen=True)
class RequestNote:
    """``note`` goes under a user message that matches ``when`` (a regular expression, any case).
    ``min_tokens``: the reply to such a message does not end before it has this many tokens (a
    small base model asked for a story otherwise often stops after one sentence)."""

    when: str
    note: str
    min_tokens: int = 0


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
    greeting: str = ""  # the assistant's opening message in a new chat (a card's first_mes)
    alternate_greetings: tuple[str, ...] = ()
    example_separator: str = ""  # a line before each example conversation
    chat_start: str = ""  # a line between the examples and the real conversation
    # Lines put under a user message whose text matches their pattern (first match wins): the
    # author's note of KoboldCpp and SillyTavern, here only where the request calls for it —
    # a story, a list, code — so short questions keep short answers.
    notes: tuple[RequestNote, ...] = ()
    # A line put under a question the user asks about themselves, quoting what they said about it
    # earlier (``{said}`` is replaced by the quotes; scaffold/recall.py). Empty: no recall.
    recall_note: str = ""
    # A line put under a follow-up ("And of Spain?") with the whole question it stands for
    # (``{question}``; scaffold/followup.py). Empty: follow-ups are left as written.
    followup_note: str = ""
    # A character card's picture: a file name in the data folder's ``avatars/`` (the card's own
    # PNG, named by its hash). Only such a name is kept, so a template cannot point elsewhere.
    avatar: str = ""
    lorebook: Lorebook | None = None
    # Per chat (a chat keeps its own copy of the frame): KoboldCpp's and SillyTavern's author's note,
    # put ``authors_note_depth`` messages from the end, and the user's persona, put in the frame.
    authors_note: str = ""
    authors_note_depth: int = 4
    persona: str = ""
    # Per chat: what the person pinned for the model to keep in mind (a line each; "Remember this"
    # on a message adds one), put in the frame so it stays cached (scaffold/transcript.py).
    memory: str = ""
    # Message-plan steps this frame switches off, by name (scaffold/plan.py's STEPS): per chat,
    # since a chat keeps its own copy of its frame.
    steps_off: tuple[str, ...] = ()
    # The language the frame is written in: the plan's steps read its words from
    # ``resources/languages/<language>.toml`` (scaffold/language.py).
    language: str = "en"
    # A group chat's characters, in the frame's fixed order (scaffold/group.py); empty: one
    # character. ``assistant_name`` is then whichever of them speaks next.
    members: tuple[str, ...] = ()
    # The card a template was imported from, as JSON, so exporting it gives back every field it had.
    origin: str = ""
    source: Path | None = field(default=None, compare=False)

    @property
    def speaker_names(self) -> tuple[str, ...]:
        """Everyone whose label opens a turn: the person, the character, a group's members."""
        return tuple(dict.fromkeys((self.user_name, self.assistant_name, *self.members)))

    def stop_strings(self) -> list[str]:
        """A new line that opens any speaker's turn ends the reply, and so does one that opens
        another example conversation (the model may start one after its answer)."""
        stops = self.frame_stops()
        return stops + [s for s in note_openings(self) if s not in stops]

    def frame_stops(self) -> list[str]:
        """The stops without the notes' openings (a message plan's step adds those)."""
        stops = [f"\n{name}:" for name in self.speaker_names]
        frame = [f"\n{line}" for line in (self.example_separator, self.chat_start) if line]
        return stops + [s for s in dict.fromkeys([*self.extra_stops, *frame]) if s not in stops]


def note_openings(template: Template) -> list[str]:
    """Each note's opening on a new line (see ``note_opening``), once."""
    lines = [n.note for n in template.notes] + [template.recall_note, template.followup_note]
    return [f"\n{opening}" for opening in dict.fromkeys(note_opening(line) for line in lines) if opening]


def note_opening(note: str) -> str:
    """A note's first two words ("(The Assistant", the follow-up note's "(The User"): a reply line
    that starts like a note is the model writing the transcript's notes, not its answer ("(The
    User explains in several paragraphs."), so it ends the reply there."""
    words = note.split()
    return " ".join(words[:2]) if len(words) >= 2 else ""


def templates_dir() -> Path:
    from app.paths import resources_dir

    return resources_dir() / "templates"


def user_templates_dir() -> Path:
    from app.paths import data_dir

    return data_dir() / "templates"


def template_slug(name: str) -> str:
    """The name a template is saved under: its own name made safe. A name is data — it is never a
    path, never hidden, never empty, and at most 64 characters."""
    slug = re.sub(r"[^\w.-]+", "-", name).strip(".-_")[:64].rstrip(".-_")
    return slug or "template"


def available_templates() -> list[str]:
    """Shipped templates, then the user's own (saved from the window)."""
    folders = (templates_dir(), user_templates_dir())
    return sorted({p.stem for folder in folders for p in folder.glob("*.toml") if is_plain_name(p.stem)})


def load_template(name_or_path: str | Path) -> Template:
    """Load a template by name (the user's own first), or a template file by path."""
    path = Path(name_or_path)
    if not path.suffix and not is_plain_name(str(name_or_path)):
        raise TemplateError(f"No template '{name_or_path}': a template name cannot be a path.")
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
        template = Template(
            name=str(data.get("name", default_name)),
            preamble=_text(data, "preamble"),
            user_name=_name(data.get("user_name", "User")),
            assistant_name=_name(data.get("assistant_name", "Assistant")),
            examples=tuple(_exchange(e) for e in data.get("examples", [])),
            extra_stops=tuple(str(s) for s in data.get("stop", [])),
            title=str(data.get("title", "")),
            description=str(data.get("description", "")),
            greeting=_optional(data, "greeting"),
            alternate_greetings=tuple(str(g) for g in data.get("alternate_greetings", []) if str(g).strip()),
            example_separator=_optional(data, "example_separator"),
            chat_start=_optional(data, "chat_start"),
            notes=tuple(_note(n) for n in data.get("notes", [])),
            recall_note=_one_slot_line(data.get("recall_note", ""), "recall_note", "{said}"),
            followup_note=_one_slot_line(data.get("followup_note", ""), "followup_note", "{question}"),
            avatar=_avatar_name(data.get("avatar", "")),
            lorebook=lorebook_from_dict(data["lorebook"]) if "lorebook" in data else None,
            authors_note=_optional(data, "authors_note"),
            authors_note_depth=_depth(data.get("authors_note_depth", 4)),
            persona=_optional(data, "persona"),
            memory=_optional(data, "memory"),
            steps_off=_steps_off(data.get("steps_off", [])),
            language=_language(data.get("language", "en")),
            members=tuple(_name(m) for m in data.get("members", [])),
            origin=data.get("origin", "") if isinstance(data.get("origin", ""), str) else "",
            source=source,
        )
    except (TypeError, AttributeError, ValueError) as exc:
        raise TemplateError(f"Template '{default_name}' is malformed: {exc}") from None
    if template.user_name.casefold() == template.assistant_name.casefold():
        raise TemplateError(f"Template '{template.name}' uses one name for both speakers.")
    return template


def _language(value: object) -> str:
    """A language Basechat has words for (an unknown one is one clear line at load)."""
    from app.scaffold.language import load_language

    return load_language(str(value)).code


def _steps_off(value: object) -> tuple[str, ...]:
    """Names of message-plan steps; a name no step has is kept (a newer Basechat's) and harmless."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("'steps_off' must be a list of step names")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


def _depth(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("'authors_note_depth' must be a number")
    return max(0, min(1000, int(value)))


def _exchange(data: dict) -> Exchange:
    return Exchange(_text(data, "user"), _text(data, "assistant"), int(data.get("block", 0)))


def _optional(mapping: dict, key: str) -> str:
    value = mapping.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    return value.strip()


MAX_PATTERN_CHARS = 300


def _note(data: dict) -> RequestNote:
    """A request note; its pattern comes from a file, so it is checked here and matched with a
    time limit (``note_match``)."""
    import regex

    when, note = _text(data, "when"), _text(data, "note")
    if len(when) > MAX_PATTERN_CHARS:
        raise ValueError(f"a note pattern is longer than {MAX_PATTERN_CHARS} characters")
    try:
        regex.compile(when)
    except (regex.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"note pattern {when[:40]!r} is not valid ({exc})") from None
    if "\n" in note:
        raise ValueError("a note must be one line")
    return RequestNote(when, note, _min_tokens(data.get("min_tokens", 0)))


def _one_slot_line(value: object, key: str, slot: str) -> str:
    """A note line with ``slot`` in it once, where the scaffold's words go (the recall note's
    ``{said}``, the follow-up note's ``{question}``)."""
    text = str(value).strip()
    if text and ("\n" in text or text.count(slot) != 1):
        raise ValueError(f"{key} must be one line with {slot} in it once")
    return text


MAX_MIN_TOKENS = 2048


def _min_tokens(value: object) -> int:
    """A note's minimum reply length: a whole number of tokens, 0 (none) to ``MAX_MIN_TOKENS``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MIN_TOKENS:
        raise ValueError(f"a note's min_tokens must be a whole number from 0 to {MAX_MIN_TOKENS}")
    return value


def _text(mapping: dict, key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return value.strip()


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or ":" in value:
        raise ValueError(f"speaker name {value!r} must be one line without ':'")
    return value.strip()


def template_to_dict(template: Template) -> dict:
    """The template as plain data: what TOML files, chat settings and exports hold."""
    data: dict = {
        "name": template.name, "title": template.title or template.name,
        "description": template.description, "user_name": template.user_name,
        "assistant_name": template.assistant_name, "preamble": template.preamble,
        "stop": list(template.extra_stops),
    }  # fmt: skip
    for key in (
        "greeting",
        "example_separator",
        "chat_start",
        "avatar",
        "persona",
        "memory",
        "authors_note",
        "recall_note",
        "followup_note",
    ):
        if getattr(template, key):
            data[key] = getattr(template, key)
    if template.authors_note:
        data["authors_note_depth"] = template.authors_note_depth
    if template.alternate_greetings:
        data["alternate_greetings"] = list(template.alternate_greetings)
    if template.notes:
        data["notes"] = [_note_dict(n) for n in template.notes]
    data["examples"] = [_exchange_dict(e) for e in template.examples]
    if template.lorebook is not None:
        data["lorebook"] = lorebook_to_dict(template.lorebook)
    if template.origin:
        data["origin"] = template.origin
    if template.steps_off:
        data["steps_off"] = list(template.steps_off)
    if template.language != "en":
        data["language"] = template.language
    if template.members:
        data["members"] = list(template.members)
    return data


def _note_dict(note: RequestNote) -> dict:
    data: dict = {"when": note.when, "note": note.note}
    if note.min_tokens:
        data["min_tokens"] = note.min_tokens
    return data


def _exchange_dict(exchange: Exchange) -> dict:
    data: dict = {"user": exchange.user, "assistant": exchange.assistant}
    return data | ({"block": exchange.block} if exchange.block else {})


def template_to_toml(template: Template) -> str:
    """TOML written by tomli-w, so any text (emoji, control characters) reads back the same."""
    import tomli_w

    return tomli_w.dumps(template_to_dict(template), multiline_strings=True)


AVATAR_NAME = re.compile(r"[0-9a-f]{16}\.png")


def _avatar_name(value: object) -> str:
    """A stored avatar's file name, or "" for anything else (a path, a URL, another type)."""
    return value if isinstance(value, str) and AVATAR_NAME.fullmatch(value) else ""


def avatars_dir() -> Path:
    from app.paths import data_dir

    return data_dir() / "avatars"


def save_avatar(image: bytes) -> str:
    """Keep a card's picture (its PNG as it came) under its hash; "" when it cannot be written
    (the card still imports; it just has no picture)."""
    name = f"{hashlib.sha256(image).hexdigest()[:16]}.png"
    try:
        avatars_dir().mkdir(parents=True, exist_ok=True)
        write_atomically(avatars_dir() / name, image)
    except OSError:
        return ""
    return name


def save_user_template(template: Template) -> Path:
    """Saved in the person's templates folder under its slug (``template.name`` should already be
    one: ``save_imported`` and the window make sure); never anywhere else."""
    folder = user_templates_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{template_slug(template.name)}.toml"
        write_atomically(path, template_to_toml(template))
    except OSError as exc:
        log.warning("saving the template %r failed: %s", template.name, exc)
        raise TemplateError(f"Cannot save the template in {folder}: {exc.strerror or exc}.") from None
    return path


def delete_user_template(name: str) -> Path:
    """Delete one of the person's own templates; shipped ones cannot be deleted."""
    path = user_templates_dir() / f"{name}.toml"
    if not is_plain_name(name):
        raise TemplateError(f"Cannot delete '{name}': a template name cannot be a path.")
    if not path.is_file():
        shipped = (templates_dir() / f"{name}.toml").is_file()
        reason = "it is shipped with Basechat" if shipped else "there is no such template of yours"
        raise TemplateError(f"Cannot delete '{name}': {reason}.")
    path.unlink()
    return path


NOTE_MATCH_SECONDS = 0.05
_SCANNED_CHARS = 4000


def note_match(pattern: str, text: str) -> str | None:
    """The words of ``text`` a pattern from a template file matches (None: no match), with the
    ``regex`` package's time limit: one built to backtrack for ever (``^(a+)+$``) counts as no
    match, with a log line, and never hangs a prompt. Only the start of a long message is read."""
    import regex

    try:
        found = regex.search(pattern, text[:_SCANNED_CHARS], regex.IGNORECASE, timeout=NOTE_MATCH_SECONDS)
    except TimeoutError:
        log.warning("request note pattern %r took too long; not applied", pattern[:60])
        return None
    return found.group(0) if found is not None else None
