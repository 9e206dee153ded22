"""Rendering a conversation into the transcript a base model continues.

The prompt is a list of pieces rather than one string so the engine can
tokenise each piece once, reuse the exact token ids it generated for earlier
replies (keeping the KV-cache prefix intact), and drop whole old turns when
the context is full. Joining the pieces' text gives exactly the prompt sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.scaffold.lorebook import LoreScan, estimate_tokens, scan
from app.scaffold.macros import expand
from app.scaffold.plan import notes_for
from app.scaffold.speakers import label_pattern, neutralise
from app.scaffold.template import Template

Role = Literal["user", "assistant"]
PieceKind = Literal["header", "user", "assistant", "insert", "cue"]

# The person's earlier messages a step reads directly (the follow-up note); the recall step reads
# the whole path through its index (scaffold/memory.py).
EARLIER_LOOKBACK = 50


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
    speaker: str = ""  # in a group chat, the member who said it ("": the frame's character)

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


def turn_text(template: Template, message: Message, earlier: list[str] | None = None,
              notes: str | None = None) -> str:  # fmt: skip
    """One turn as the transcript shows it; a user turn gets the notes its message plan calls for
    (``notes``: the plan's, worked out once by the caller; else worked out here from ``earlier``,
    the user's messages before it, for the recall and follow-up notes)."""
    if message.role == "user":
        body = neutralise(message.text.strip(), template)
        if notes is None:
            notes = notes_for(template, message.text, tuple(earlier or ()))
        return f"{template.user_name}: {body}\n{notes}"
    body = message.continuation
    return f"{speaker_label(template, message)}{neutralise(body, template)}\n"


def speaker_label(template: Template, message: Message) -> str:
    """A reply's label: its own speaker's in a group chat, else the frame's character's."""
    return f"{message.speaker or template.assistant_name}:"


_STARTED = datetime.now()


@dataclass(frozen=True)
class Moment:
    """What a render depends on besides the conversation: the time its date macros show (when the
    app started, not at each turn, so a prompt stays the same turn after turn and stays cached)
    and how the lorebook's budget counts tokens (the engine's tokenizer when there is one)."""

    now: datetime = _STARTED
    count: Callable[[str], int] = estimate_tokens


def frame_text(template: Template, text: str, moment: Moment) -> str:
    """A frame field with its macros filled: the speakers' names and the chat's date."""
    return expand(text, template.user_name, template.assistant_name, moment.now)


MEMORY_LINE_CHARS = 300  # a pinned line is a fact, not a document


def memory_text(template: Template, moment: Moment) -> str:
    """The chat's pinned memory as the frame says it: one line per entry, each defused so none can
    open a turn ("" when nothing is pinned). In the frame, so the cached prefix keeps it."""
    lines = [" ".join(line.split()) for line in template.memory.splitlines()]
    entries = [neutralise(frame_text(template, line[:MEMORY_LINE_CHARS], moment), template)
               for line in lines if line]  # fmt: skip
    if not entries:
        return ""
    from app.scaffold.language import load_language

    heading = load_language(template.language).memory_heading.replace("{char}", template.assistant_name)
    return f"{heading}\n" + "".join(f"- {entry}\n" for entry in entries)


def remembered_line(role: str, text: str) -> str:
    """A message pinned with "Remember this": who said it and its words, on one line (macros for
    the names, so a renamed speaker stays right)."""
    who = "{{user}}" if role == "user" else "{{char}}"
    words = " ".join(text.split())
    return f'{who} said: "{words[: MEMORY_LINE_CHARS - 20]}"'


def lore_scan(template: Template, messages: list[str], moment: Moment | None = None) -> LoreScan:
    """The lorebook entries these messages (oldest first, the one being sent last) fire."""
    return scan(template.lorebook, messages, (moment or Moment()).count)


def header_text(template: Template, lore: LoreScan | None = None, moment: Moment | None = None) -> str:
    """Lore placed before the description, the preamble, lore placed after it, the persona, example
    conversations, and the opening of this one (its pinned memory, a card's greeting)."""
    moment = moment or Moment()
    lore = lore if lore is not None else lore_scan(template, [], moment)
    parts = [_lore_text(template, f, moment) for f in lore.placed("before_char")]
    parts.append(f"{frame_text(template, template.preamble, moment)}\n")
    parts += [_lore_text(template, f, moment) for f in lore.placed("after_char")]
    if template.persona:
        parts.append(f"{frame_text(template, template.persona, moment)}\n")
    parts.append("\n")
    parts += _example_parts(template, moment)
    if template.chat_start:
        parts.append(f"{template.chat_start}\n")
    parts.append(memory_text(template, moment))  # this conversation's, after the examples'
    if template.greeting:
        greeting = frame_text(template, template.greeting, moment)
        parts.append(turn_text(template, Message("assistant", greeting)))
    return "".join(parts)


def _example_parts(template: Template, moment: Moment) -> list[str]:
    """The example conversations, each opened by the separator line when the template has one."""
    parts: list[str] = []
    block: int | None = None
    said: list[str] = []
    for ex in template.examples:
        if ex.block != block:
            said = []
            if template.example_separator:
                parts.append(f"{template.example_separator}\n")
        block = ex.block
        user = frame_text(template, ex.user, moment)
        parts += [
            turn_text(template, Message("user", user), said),
            turn_text(template, Message("assistant", frame_text(template, ex.assistant, moment))),
        ]
        said = [*said, user]
    return parts


def _lore_text(template: Template, fired, moment: Moment) -> str:
    return f"{neutralise(frame_text(template, fired.entry.content, moment), template)}\n"


def transcript_text(template: Template, history: list[Message], moment: Moment | None = None) -> str:
    """What the model reads before the next message: the frame and every turn so far, with the
    lore and the author's note the last of them calls for."""
    moment = moment or Moment()
    lore = lore_scan(template, [m.text for m in history], moment)
    pieces = [
        Piece("header", header_text(template, lore, moment)),
        *_turn_pieces(template, history, lore, moment),
    ]
    return "".join(p.text for p in pieces)


def _turn_pieces(
    template: Template, turns: list[Message], lore: LoreScan, moment: Moment, notes: str | None = None
) -> list[Piece]:
    """The turns, with the lore placed at a depth and the author's note among them: depth N goes
    before the N-th turn from the end (0: after the last one, just before the reply). ``notes``:
    the newest turn's, from its message plan."""
    last = len(turns) - 1
    pieces = [Piece(m.role, turn_text(template, m, said_before(turns, i), notes if i == last else None), i)
              for i, m in enumerate(turns)]  # fmt: skip
    for depth, text in sorted(_insertions(template, lore, moment), key=lambda pair: -pair[0]):
        where = max(len(pieces) - _turn_index_from_end(pieces, depth), 0)
        pieces.insert(where, Piece("insert", text))
    return pieces


def said_before(turns: list[Message], index: int) -> list[str]:
    """The user's messages before turn ``index`` that the recall and follow-up notes may read (the
    last ``EARLIER_LOOKBACK`` of them, found without walking the whole chat). Only the newest turn
    gets these notes: left in older turns, a held-open reply copied one into a story ("[The
    assistant remembers: …]"). Dropping them re-reads only the last exchange."""
    last = index == len(turns) - 1
    if not last or turns[index].role != "user":
        return []
    return _user_texts(turns, index)


def _user_texts(turns: list[Message], end: int) -> list[str]:
    """The user's messages among the ``2 * EARLIER_LOOKBACK`` turns before ``end``, oldest first:
    a bounded read (no copy of the chat), however long it is."""
    start = max(0, end - 2 * EARLIER_LOOKBACK)
    return [turns[i].text for i in range(start, end) if turns[i].role == "user"]


def _insertions(template: Template, lore: LoreScan, moment: Moment) -> list[tuple[int, str]]:
    inserts = [(f.depth, _lore_text(template, f, moment)) for f in lore.placed("at_depth")]
    if template.authors_note:
        note = " ".join(frame_text(template, template.authors_note, moment).split())
        inserts.append((template.authors_note_depth, f"[Author's note: {neutralise(note, template)}]\n"))
    return inserts


def _turn_index_from_end(pieces: list[Piece], depth: int) -> int:
    """How many pieces from the end the place ``depth`` turns up is (inserts already there count)."""
    seen = 0
    for offset, piece in enumerate(reversed(pieces)):
        if seen == depth:
            return offset
        seen += piece.kind != "insert"
    return len(pieces)


def cue_text(template: Template) -> str:
    """The open assistant label the model continues; no trailing space, so the
    model writes its own leading-space token as it would in running text."""
    return f"{template.assistant_name}:"


def render_pieces(
    template: Template, history: list[Message], user_text: str | None, moment: Moment | None = None,
    notes: str | None = None,
) -> list[Piece]:  # fmt: skip
    """The prompt for ``user_text`` as pieces: the header, each turn (the new message's index is
    ``len(history)``; None: no new message, a group's members talk on), what is inserted among
    them, and the cue. ``notes``: the lines its message
    plan puts under it (scaffold/plan.py), when the caller has worked the plan out."""
    moment = moment or Moment()
    turns = [*history, Message("user", user_text)] if user_text is not None else list(history)
    lore = lore_scan(template, [m.text for m in turns], moment)
    header = Piece("header", header_text(template, lore, moment))
    return [header, *_turn_pieces(template, turns, lore, moment, notes), Piece("cue", cue_text(template))]


def render_prompt(
    template: Template, history: list[Message], user_text: str, moment: Moment | None = None
) -> str:
    return "".join(p.text for p in render_pieces(template, history, user_text, moment))


def cut_reply(text: str, template: Template) -> str:
    """The reply ends where the model starts any speaker's turn (or another stop string)."""
    cut = len(text)
    for stop in template.stop_strings():
        found = text.find(stop)
        if found != -1:
            cut = min(cut, found)
    label = label_pattern(template).search(text)
    if label and label.start() == 0:
        cut = 0
    return text[:cut]
