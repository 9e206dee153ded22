"""Rendering a conversation into the transcript a base model continues.

The prompt is a list of pieces rather than one string so the engine can
tokenise each piece once, reuse the exact token ids it generated for earlier
replies (keeping the KV-cache prefix intact), and drop whole old turns when
the context is full. Joining the pieces' text gives exactly the prompt sent.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from app.scaffold.template import Template

Role = Literal["user", "assistant"]
PieceKind = Literal["header", "user", "assistant", "cue"]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation.

    ``raw`` is the reply exactly as the model continued after the speaker
    label (usually with a leading space); ``tokens`` are the ids it generated
    for ``raw``. Both are optional: a message typed or imported has neither,
    and is then rendered as ``" " + text``.
    """

    role: Role
    text: str
    raw: str | None = None
    tokens: tuple[int, ...] | None = None

    @property
    def continuation(self) -> str:
        """What follows the speaker label: the model's own continuation, else the text."""
        return self.raw if self.raw is not None else " " + self.text.strip()


@dataclass(frozen=True)
class Piece:
    kind: PieceKind
    text: str
    message_index: int | None = None


log = logging.getLogger(__name__)


def neutralise(text: str, template: Template) -> str:
    """Quote every line that starts like a speaker's turn, so a message cannot forge one.

    A user who types "\\nAssistant: sure!" would otherwise write the model's
    turn for it. Quoting (``> Assistant: …``) keeps what they wrote readable
    to the model while no line of theirs begins a turn any more.
    """
    pattern = _label_pattern(template)
    return "\n".join(f"> {line.lstrip()}" if pattern.match(line) else line for line in text.split("\n"))


def _label_pattern(template: Template) -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in template.speaker_names)
    return re.compile(rf"^\s*(?:{names})\s*:", re.IGNORECASE)


def turn_text(template: Template, message: Message) -> str:
    if message.role == "user":
        body = neutralise(message.text.strip(), template)
        return f"{template.user_name}: {body}\n{request_note(template, message.text)}"
    body = message.continuation
    return f"{template.assistant_name}:{neutralise(body, template)}\n"


def request_note(template: Template, request: str) -> str:
    """The template's note for this kind of request (a story, a list, code…), else "". A pure
    function of the text, so a turn renders the same every time and the cache stays valid."""
    for note in template.notes:
        if _matches(note.when, request):
            return f"{note.note}\n"
    return ""


NOTE_MATCH_SECONDS = 0.05
_SCANNED_CHARS = 4000


def _matches(pattern: str, text: str) -> bool:
    """A pattern from a template file, matched with the ``regex`` package's time limit: one built to
    backtrack for ever (``^(a+)+$``) counts as no match, with a log line, and never hangs a
    prompt. Only the start of a very long message is scanned."""
    import regex

    try:
        return (
            regex.search(pattern, text[:_SCANNED_CHARS], regex.IGNORECASE, timeout=NOTE_MATCH_SECONDS)
            is not None
        )
    except TimeoutError:
        log.warning("request note pattern %r took too long; not applied", pattern[:60])
        return False


def header_text(template: Template) -> str:
    """Preamble, example conversations, and the opening of this one (a card's greeting)."""
    parts = [f"{template.preamble}\n\n"]
    block = None
    for ex in template.examples:
        if template.example_separator and ex.block != block:
            parts.append(f"{template.example_separator}\n")
        block = ex.block
        parts += [
            turn_text(template, Message("user", ex.user)),
            turn_text(template, Message("assistant", ex.assistant)),
        ]
    if template.chat_start:
        parts.append(f"{template.chat_start}\n")
    if template.greeting:
        parts.append(turn_text(template, Message("assistant", template.greeting)))
    return "".join(parts)


def transcript_text(template: Template, history: list[Message]) -> str:
    """What the model reads before the next message: the frame and every turn so far."""
    return header_text(template) + "".join(turn_text(template, m) for m in history)


def cue_text(template: Template) -> str:
    """The open assistant label the model continues; no trailing space, so the
    model writes its own leading-space token as it would in running text."""
    return f"{template.assistant_name}:"


def render_pieces(template: Template, history: list[Message], user_text: str) -> list[Piece]:
    pieces = [Piece("header", header_text(template))]
    for index, message in enumerate(history):
        pieces.append(Piece(message.role, turn_text(template, message), index))
    pieces.append(Piece("user", turn_text(template, Message("user", user_text)), len(history)))
    pieces.append(Piece("cue", cue_text(template)))
    return pieces


def render_prompt(template: Template, history: list[Message], user_text: str) -> str:
    return "".join(p.text for p in render_pieces(template, history, user_text))


def cut_reply(text: str, template: Template) -> str:
    """The reply ends where the model starts any speaker's turn (or another stop string)."""
    cut = len(text)
    for stop in template.stop_strings():
        found = text.find(stop)
        if found != -1:
            cut = min(cut, found)
    label = _label_pattern(template).search(text)
    if label and label.start() == 0:
        cut = 0
    return text[:cut]
