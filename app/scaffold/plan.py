"""What Basechat does to a message, in one place: the message plan.

Between Enter and the model a message passes the steps in ``STEPS``, in order. Each reads the
message, the person's earlier messages and the frame, and either acts — adding a line under the
message, a minimum length, words to favour, draws, stops — saying what it did and why, or stands
aside. The plan is computed once per message; the transcript renders its notes, the engine
follows its numbers (through ``SamplingParams``: ``min_tokens``, ``favour``; ``best_of`` draws;
the stops), and the prompt inspector lists what acted.

Every step can be switched off by name: ``steps_off = ["best_of"]`` in a frame (a template file,
or the chat's own copy of its frame, which the frame panel's Steps list edits). Pure Python.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.scaffold.followup import spelled_out
from app.scaffold.language import load_language
from app.scaffold.memory import MemoryIndex, Recalled, as_told, index_of, told_words
from app.scaffold.speakers import label_pattern, neutralise
from app.scaffold.template import RequestNote, Template, note_match, note_openings

MOST_DRAWS = 8  # best_of never draws more than this, however many are asked


@dataclass(frozen=True)
class Acted:
    """One step that acted on this message: what it did and why (the inspector shows both)."""

    step: str
    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.step}: {self.what} — {self.why}"


@dataclass(frozen=True)
class Asked:
    """A message and what the steps read besides its words: the person's earlier messages (the
    newest last, bounded by the transcript) and how the reply will be sampled."""

    template: Template
    text: str
    earlier: tuple[str, ...] = ()
    best_of: int = 1
    sampled: bool = False  # temperature above 0: draws can differ
    can_rank: bool = False  # the engine scores replies, so the likeliest of several can be kept
    held_open: bool = False  # ignore_eos: the reply runs to its limit whatever the steps say
    # Everything the person said on this chat's path (scaffold/memory.py); None: only ``earlier``.
    memory: MemoryIndex | None = field(default=None, compare=False)

    def recall(self) -> Recalled | None:
        if self.memory is None and not self.earlier:
            return None  # an older turn or a first message: nothing said before it to search
        memory = self.memory if self.memory is not None else index_of(self.earlier, self.template.language)
        return memory.recall(self.text)


@dataclass(frozen=True)
class MessagePlan:
    notes: tuple[str, ...] = ()  # lines under the message, in order
    min_tokens: int = 0
    favour: tuple[str, ...] = ()
    draws: int = 1
    stops: tuple[str, ...] = ()
    avoid: frozenset[str] = frozenset()  # draws that say only one of these (as ``plain``) rank last
    acted: tuple[Acted, ...] = ()
    quoted: tuple[str, ...] = field(default=(), compare=False)  # the recalled answer, as the person said it

    @property
    def notes_text(self) -> str:
        return "".join(f"{line}\n" for line in self.notes)

    def did(self, step: str, what: str, why: str) -> MessagePlan:
        return replace(self, acted=(*self.acted, Acted(step, what, why)))


@dataclass(frozen=True)
class Step:
    name: str
    label: str  # what the Steps list in the frame panel shows
    run: Callable[[Asked, MessagePlan], MessagePlan]


# -- the steps -------------------------------------------------------------------------------------


def matching_note(template: Template, request: str) -> tuple[RequestNote, str] | None:
    """The first of the frame's notes whose pattern ``request`` matches (a story, a list, code…),
    and the words that matched."""
    return _first_matching(template.notes, request)


@functools.lru_cache(maxsize=256)
def _first_matching(notes: tuple[RequestNote, ...], request: str) -> tuple[RequestNote, str] | None:
    """Two steps read the same note, and each turn is rendered again at the next message: the
    patterns (each with its time limit) run once per message."""
    for note in notes:
        words = note_match(note.when, request)
        if words is not None:
            return note, words
    return None


def _request_note(asked: Asked, plan: MessagePlan) -> MessagePlan:
    found = matching_note(asked.template, asked.text)
    if found is None:
        return plan
    note, words = found
    plan = replace(plan, notes=(*plan.notes, note.note))
    return plan.did("request_note", f"note {note.note}", f"the message says {words!r}")


def _min_length(asked: Asked, plan: MessagePlan) -> MessagePlan:
    found = matching_note(asked.template, asked.text)
    if found is None or not found[0].min_tokens:
        return plan
    note, words = found
    plan = replace(plan, min_tokens=note.min_tokens)
    return plan.did("min_length", f"minimum {note.min_tokens} tokens", f"the message says {words!r}")


def _recall(asked: Asked, plan: MessagePlan) -> MessagePlan:
    line = asked.template.recall_note
    recalled = asked.recall() if line else None
    if recalled is None:
        return plan
    language = load_language(asked.template.language)
    told = tuple(as_told(f.text, language) for f in recalled.quotes)
    said = '" and "'.join(neutralise(t, asked.template) for t in told)
    answer = (recalled.answer.text,)  # in the person's words: the kinds' patterns read those
    plan = replace(plan, notes=(*plan.notes, line.replace("{said}", said)), quoted=answer)
    return plan.did("recall", f"quoting {len(told)} earlier message(s)", _recall_why(recalled))


def _recall_why(recalled: Recalled) -> str:
    """Which messages were quoted and what matched: "message 3 (daughter, name)"."""
    return "; ".join(f"message {f.turn + 1} ({', '.join(f.why)})" for f in recalled.quotes)


def _favour(asked: Asked, plan: MessagePlan) -> MessagePlan:
    language = load_language(asked.template.language)
    words = told_words(asked.text, list(plan.quoted), language) if plan.quoted else ()
    if not words:
        return plan
    plan = replace(plan, favour=words)
    shown = ", ".join(repr(w) for w in words)
    return plan.did("favour", f"favouring {shown} until one is written", "the recall note quotes them")


def _followup(asked: Asked, plan: MessagePlan) -> MessagePlan:
    line = asked.template.followup_note
    words = load_language(asked.template.language).followup
    whole = spelled_out(asked.text, list(asked.earlier), words=words) if line and asked.earlier else None
    if not whole:
        return plan
    plan = replace(plan, notes=(*plan.notes, line.replace("{question}", neutralise(whole, asked.template))))
    return plan.did("followup", f"spelled out as: {whole}", "a short follow-up to the last question")


def _best_of(asked: Asked, plan: MessagePlan) -> MessagePlan:
    """A short answer drawn several times, the likeliest kept (OpenAI's and vLLM's best_of): not
    a reply held to a minimum or to its limit, not greedy, and only on an engine that ranks."""
    wanted = min(asked.best_of, MOST_DRAWS)
    if wanted < 2 or plan.min_tokens > 0 or asked.held_open or not asked.sampled or not asked.can_rank:
        return plan
    plan = replace(plan, draws=wanted)
    return plan.did("best_of", f"{wanted} draws, the likeliest kept", "a short answer, sampled")


def plain(text: str) -> str:
    """A line as the echo guard compares it: lower case, words only."""
    return " ".join(re.findall(r"\w+", text.lower()))


def echo_lines(template: Template, message: str) -> frozenset[str]:
    """What a reply must not only say back: the message and every line of the frame's examples,
    as ``plain`` compares them (the guard below, and the eval's echo count)."""
    lines = [message, *(line for e in template.examples for line in (e.user, e.assistant))]
    lines += scene_lines(template)
    return frozenset(filter(None, map(plain, lines)))


def scene_lines(template: Template) -> list[str]:
    """A group frame's example lines, each in its member's voice (scaffold/group.py puts them in
    the preamble): what a member must not simply say again."""
    if not template.members:
        return []
    pattern = label_pattern(template)
    return [line.split(":", 1)[1] for line in template.preamble.splitlines() if pattern.match(line)]


def _echo_guard(asked: Asked, plan: MessagePlan) -> MessagePlan:
    """A small model drawn several times often has, among its draws, the person's own message
    said back ("What should we talk about?" → the same) or a line of the frame's examples ("yo" →
    "My favourite fruit is mango."): such a draw is kept only when every draw is one."""
    if plan.draws < 2:
        return plan
    plan = replace(plan, avoid=echo_lines(asked.template, asked.text))
    return plan.did("echo_guard", "a draw that repeats your message or an example's line ranks last",
                    f"{plan.draws} draws to choose from")  # fmt: skip


def _note_stops(asked: Asked, plan: MessagePlan) -> MessagePlan:
    """A reply line that opens like one of the frame's notes is the model writing the transcript's
    notes, not its answer: it ends the reply there."""
    openings = note_openings(asked.template)
    if not openings:
        return plan
    plan = replace(plan, stops=(*plan.stops, *[o for o in openings if o not in plan.stops]))
    return plan.did("note_stops", f"{len(openings)} note opening(s) end the reply", "the frame has notes")


STEPS: tuple[Step, ...] = (
    Step("request_note", "Note under a request (a story, a list, code…)", _request_note),
    Step("min_length", "Hold a long reply open to the note's minimum", _min_length),
    Step("recall", "Quote what you said earlier that answers a question", _recall),
    Step("favour", "Favour the quoted words until one is written", _favour),
    Step("followup", "Spell out a short follow-up question", _followup),
    Step("best_of", "Draw a short answer several times, keep the likeliest", _best_of),
    Step("echo_guard", "Pass over a draw that repeats your message or an example", _echo_guard),
    Step("note_stops", "End a reply that starts writing the frame's notes", _note_stops),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def plan_message(asked: Asked) -> MessagePlan:
    """Every step that is on, in order; the speakers' labels and the frame's own stops first."""
    off = set(asked.template.steps_off)
    plan = MessagePlan(stops=tuple(asked.template.frame_stops()))
    for step in STEPS:
        if step.name not in off:
            plan = step.run(asked, plan)
    return plan


def notes_for(template: Template, text: str, earlier: tuple[str, ...]) -> str:
    """Only the notes a turn gets (the frame's example turns; the newest message uses its plan)."""
    return plan_message(Asked(template, text, earlier)).notes_text


def fit_draws(plan: MessagePlan, fit: int) -> MessagePlan:
    """As many draws as fit beside the prompt (each needs room for a short answer)."""
    if plan.draws <= max(fit, 1):
        return plan
    fewer = max(fit, 1)
    return replace(plan, draws=fewer).did(
        "best_of", f"{fewer} draw(s), not {plan.draws}", "only these fit the context"
    )
