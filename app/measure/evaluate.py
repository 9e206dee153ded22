"""Measuring the scaffold: does the base model answer like a conversation partner?

Each item is asked in a fresh conversation with greedy decoding, so a run
repeats. Question items measure answers; items with ``setup`` turns first
tell the model a fact, then ask for it back (multi-turn memory).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.chat import ChatSession, raw_generation
from app.engine.base import PLAIN_GREEDY, Backend, SamplingParams
from app.errors import InputError
from app.scaffold import Message, Template

GREEDY = replace(PLAIN_GREEDY, max_tokens=64)


@dataclass(frozen=True)
class EvalItem:
    """``kind``: "qa" (and memory, with ``setup``), "probe" (only parroting is judged),
    "long" (a request for a long answer: its length is measured), "short" (a request for a short
    form — one line of code, a haiku, a title: its length is measured against ``form_tokens``,
    what the form needs), "talk" (a greeting or small talk: a reply that echoes it or copies a line
    of the frame's examples is counted), "follow_up" (an elliptical question after ``setup``) or
    "overflow" (a memory item whose ``setup`` is then pushed out of the context by ordinary talk). ``half``:
    "tune" or "held" — tune on one, report both."""

    question: str
    pattern: re.Pattern[str] | None
    setup: tuple[str, ...] = ()
    kind: str = "qa"
    half: str = ""
    form_tokens: int = 0


@dataclass(frozen=True)
class Outcome:
    item: EvalItem
    reply: str
    matched: bool
    turn_stop: bool
    leaked: bool
    completion_tokens: int
    parroted: bool = False
    looped: bool = False
    echoed: bool = False  # the reply says the message back, or a line of the frame's examples


@dataclass
class EvalReport:
    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    def write_replies(self, path: Path) -> None:
        """Every question and reply, appended as JSON lines: what a figure is made of."""
        with path.open("a", encoding="utf-8") as out:
            for o in self.outcomes:
                row = {"template": self.mode, "kind": o.item.kind, "half": o.item.half,
                       "question": o.item.question, "reply": o.reply, "matched": o.matched,
                       "turn_stop": o.turn_stop, "parroted": o.parroted,
                       "tokens": o.completion_tokens}  # fmt: skip
                out.write(json.dumps(row, ensure_ascii=False) + "\n")

    def summary(self) -> dict:
        qa = [o for o in self.outcomes if o.item.kind == "qa" and not o.item.setup]
        memory = [o for o in self.outcomes if o.item.kind == "qa" and o.item.setup]
        short = [o for o in self.outcomes if o.item.kind != "long"]
        every = self.outcomes
        figures = self._short_figures(qa, memory, short, every) | self._round_two(every)
        talk = [o for o in every if o.item.kind == "talk"]
        overflow = [o for o in every if o.item.kind == "overflow"]
        return (
            figures
            | self._forms(every)
            | {"talk_n": len(talk), "talk_echo_rate": _rate(o.echoed for o in talk)}
            | {"overflow_n": len(overflow), "overflow_recall_rate": _rate(o.matched for o in overflow)}
        )

    def _forms(self, every: list[Outcome]) -> dict:
        """Short forms asked for: how long the reply is against what the form needs (within twice
        that: no filler after it), and whether it ended at the turn."""
        forms = [o for o in every if o.item.kind == "short"]
        ratios = sorted(o.completion_tokens / o.item.form_tokens for o in forms)
        return {
            "short_form_n": len(forms),
            "short_form_median_ratio": round(ratios[len(ratios) // 2], 2) if ratios else 0.0,
            "short_form_within_2x_rate": _rate(r <= 2 for r in ratios),
            "short_form_turn_stop_rate": _rate(o.turn_stop for o in forms),
        }

    def _round_two(self, every: list[Outcome]) -> dict:
        """Parroting of the examples, long answers when asked, elliptical follow-ups."""
        long = [o for o in every if o.item.kind == "long"]
        follow = [o for o in every if o.item.kind == "follow_up"]
        lengths = sorted(o.completion_tokens for o in long)
        return {
            "parrot_n": len(every), "parrot_rate": _rate(o.parroted for o in every),
            "long_form_n": len(long),
            "long_form_median_tokens": lengths[len(lengths) // 2] if lengths else 0,
            "long_form_turn_stop_rate": _rate(o.turn_stop for o in long),
            "follow_up_n": len(follow), "follow_up_rate": _rate(o.matched for o in follow),
            "loop_rate": _rate(o.looped for o in every),
        }  # fmt: skip

    def _short_figures(self, qa, memory, short, every) -> dict:
        return {
            "template": self.mode,
            "n": len(qa),
            "answered": sum(o.matched for o in qa),
            "answered_rate": _rate(o.matched for o in qa),
            "turn_stop_rate": _rate(o.turn_stop for o in short),
            "leak_rate": _rate(o.leaked for o in every),
            "empty_rate": _rate(not o.reply.strip() for o in every),
            "mean_completion_tokens": round(sum(o.completion_tokens for o in every) / max(len(every), 1), 2),
            "memory_n": len(memory),
            "memory_recalled": sum(o.matched for o in memory),
            "memory_recall_rate": _rate(o.matched for o in memory),
            "wall_s": round(self.wall_s, 2),
        }


def _rate(flags) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def load_items(paths: list[Path]) -> list[EvalItem]:
    """Read JSONL question files; a malformed line is one clear error naming it."""
    items = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
        for number, line in enumerate(lines, 1):
            if line.strip():
                items.append(_parse_item(line, f"{path.name}:{number}"))
    if not items:
        raise InputError("No questions to ask: the files are empty.")
    return items


KINDS = ("qa", "probe", "long", "short", "talk", "follow_up", "overflow")


def _parse_item(line: str, where: str) -> EvalItem:
    try:
        data = json.loads(line)
        setup = data.get("setup", [])
        kind = data.get("kind", "qa")
        if not isinstance(data["question"], str) or not all(isinstance(s, str) for s in setup):
            raise TypeError("question and setup must be text")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        needs_pattern = kind in ("qa", "follow_up", "overflow")
        pattern = re.compile(data["answer_pattern"], re.IGNORECASE) if needs_pattern else None
        form = _form_tokens(data) if kind == "short" else 0
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, re.error) as exc:
        raise InputError(f"{where}: not a question line ({exc}).") from None
    return EvalItem(data["question"], pattern, tuple(setup), kind, str(data.get("half", "")), form)


def _form_tokens(data: dict) -> int:
    form = data["form_tokens"]
    if isinstance(form, bool) or not isinstance(form, int) or form < 1:
        raise ValueError("a short item's form_tokens must be a whole number above 0")
    return form


LONG_FORM_TOKENS = 400  # room for a long answer; a short-answer item keeps --max-tokens


def example_terms(template: Template) -> set[str]:
    """What is specific to a template's example exchanges: names (capitalised words that are not
    sentence, paragraph or list-item openers, or the speakers) and numbers, less anything its
    preamble says."""
    text = " ".join(f"{e.user} {e.assistant}" for e in template.examples)
    names = set(re.findall(r"(?<![.!?]\s)(?<![\n\-]\s)(?<!\n)(?<!^)\b([A-Z][a-z]{2,})\b", text))
    numbers = set(re.findall(r"\b\d[\d,.]*\d\b|\b\d\b", text))
    common = {"The", "What", "How", "Who", "Where", "Ask", "Your", "Hello", "Nice", "Yes", "Sure", "Hi"}
    own = set(template.speaker_names) | set(re.findall(r"\w+", template.preamble))
    return (names - common - own) | numbers


PHRASE_WORDS = 5  # a run of this many words from an example reply is a distinctive phrase


def example_phrases(template: Template) -> set[tuple[str, ...]]:
    """Every run of ``PHRASE_WORDS`` words in the example replies ("boil fresh water in a")."""
    return {p for e in template.examples for p in _runs(e.assistant)}


def _runs(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + PHRASE_WORDS]) for i in range(len(words) - PHRASE_WORDS + 1)}


def parrots(reply: str, conversation: str, terms: set[str], phrases: frozenset | set = frozenset()) -> bool:
    """The reply uses an example's name, number or phrase that this conversation never mentioned."""

    def mentions(text: str, term: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) is not None

    if any(mentions(reply, t) and not mentions(conversation, t) for t in terms):
        return True
    return bool((_runs(reply) & set(phrases)) - _runs(conversation))


def run_eval(
    engine: Backend,
    template: Template | None,
    items: list[EvalItem],
    max_tokens: int = 64,
    progress: Callable[[], None] | None = None,
    sampling: SamplingParams = GREEDY,
) -> EvalReport:
    """Ask every item; ``template=None`` asks the bare model (``--raw``)."""
    params = replace(sampling, max_tokens=max_tokens)
    report = EvalReport(template.name if template else "raw")
    started = time.perf_counter()
    for item in items:
        budget = (
            replace(params, max_tokens=max(params.max_tokens, LONG_FORM_TOKENS))
            if item.kind in ("long", "short")  # a short form, too: room to see filler after it
            else params
        )
        if template is None:
            outcome = _ask_raw(engine, item, budget)
        else:
            outcome = _ask_scaffolded(engine, template, item, budget)
        report.outcomes.append(outcome)
        if progress:
            progress()
    report.wall_s = time.perf_counter() - started
    return report


def _ask_scaffolded(engine, template: Template, item: EvalItem, params) -> Outcome:
    session = ChatSession(engine, template, params)
    for turn in item.setup:
        session.ask(turn)
    if item.kind == "overflow":
        pass_the_context(session)
    reply = session.ask(item.question)
    text = reply.text
    conversation = " ".join(m.text for m in session.history[:-1])
    return Outcome(
        item=item,
        reply=text,
        matched=bool(item.pattern and item.pattern.search(text)),
        turn_stop=reply.completion.finish_reason == "stop",
        leaked=_leaks(text, template),
        completion_tokens=reply.completion.usage.completion_tokens,
        parroted=parrots(text, conversation, example_terms(template), example_phrases(template)),
        looped=loops(reply.completion.tokens, reply.completion.finish_reason),
        echoed=echoes(text, item.question, template),
    )


# Ordinary talk with nothing about the person in it: what an overflow item's facts are pushed out by.
SMALL_TALK = (
    ("How far away is the Moon?", "About 384,000 kilometres, on average."),
    ("Why is the sky blue?", "Air scatters blue light more than red light."),
    ("What is a good way to learn to juggle?", "Start with two soft balls and practise every day."),
    ("How many strings does a violin have?", "Four."),
    ("Can you suggest a board game for a rainy day?", "Carcassonne is easy to learn and fun."),
    ("What do bees make?", "Honey and wax."),
    ("How long should an egg boil to be soft?", "About six minutes."),
    ("Which is the tallest mountain?", "Mount Everest, 8,849 metres."),
    ("Tell me something about octopuses.", "They have three hearts and blue blood."),
    ("What is the boiling point of water?", "100 degrees Celsius at sea level."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci."),
    ("What should I pack for a picnic?", "Sandwiches, fruit, water and a blanket."),
)


def pass_the_context(session: ChatSession) -> None:
    """Ordinary exchanges after the facts until the chat is half again as long as the context:
    what was said first has left the prompt, as in a long chat."""
    goal = session.engine.n_ctx * 3 // 2
    used = sum(len(session.engine.tokenize(m.text)) + 4 for m in session.history)
    turn = 0
    while used < goal:
        question, answer = SMALL_TALK[turn % len(SMALL_TALK)]
        session.history += [Message("user", question), Message("assistant", answer)]
        used += len(session.engine.tokenize(question + answer)) + 8
        turn += 1


def echoes(reply: str, message: str, template: Template) -> bool:
    """The reply, or its first line, is the message said back or a line of the frame's examples
    (compared as words only, in lower case)."""
    from app.scaffold.plan import echo_lines, plain

    said = echo_lines(template, message)
    first = reply.strip().split("\n")[0]
    return plain(reply) in said or plain(first) in said


def _leaks(text: str, template: Template) -> bool:
    """A speaker label anywhere in the shown reply (every turn stop contains one), or an extra stop."""
    markers = [f"{name}:" for name in template.speaker_names] + [s for s in template.extra_stops if s.strip()]
    return any(marker in text for marker in markers)


def _ask_raw(engine, item: EvalItem, params) -> Outcome:
    """The bare text; the reply is the continuation's first non-empty line."""
    prompt = "\n".join([*item.setup, item.question])
    completion = raw_generation(engine, prompt, params).run().completion
    lines = completion.text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    reply = lines[first].strip() if first is not None else ""
    return Outcome(
        item=item,
        reply=reply,
        matched=bool(item.pattern and item.pattern.search(reply)),
        turn_stop=first is not None and first < len(lines) - 1,
        leaked=False,
        completion_tokens=completion.usage.completion_tokens,
        looped=loops(completion.tokens, completion.finish_reason),
    )


LOOP_RUN, LOOP_REPEATS = 4, 3


def loops(tokens: tuple[int, ...] | list[int], finish_reason: str = "stop") -> bool:
    """A reply caught in a loop: a run of ``LOOP_RUN`` tokens (or more: a longer run holds a
    shorter one) repeats ``LOOP_REPEATS`` times, or it hit the length limit while its last run had
    come before."""
    runs = Counter(tuple(tokens[i : i + LOOP_RUN]) for i in range(len(tokens) - LOOP_RUN + 1))
    if runs and max(runs.values()) >= LOOP_REPEATS:
        return True
    return finish_reason == "length" and len(tokens) >= LOOP_RUN and runs[tuple(tokens[-LOOP_RUN:])] >= 2


def across_seeds(summaries: list[dict]) -> dict:
    """One summary of runs with different seeds: each figure's mean, with its min and max (a
    figure no seed moved, such as the number of questions, keeps its own value and type)."""
    merged = dict(summaries[0])
    for key, value in summaries[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [s[key] for s in summaries]
            merged[key] = value if len(set(values)) == 1 else round(sum(values) / len(values), 4)
            merged[f"{key}_min"], merged[f"{key}_max"] = min(values), max(values)
    return merged


TABLE_COLUMNS = (
    "answered_rate", "turn_stop_rate", "leak_rate", "empty_rate", "memory_recall_rate", "parrot_rate",
    "long_form_median_tokens", "long_form_turn_stop_rate", "follow_up_rate", "loop_rate",
)  # fmt: skip


def markdown_table(summaries: list[dict]) -> str:
    header = "| template | " + " | ".join(TABLE_COLUMNS) + " |"
    rule = "|---" * (len(TABLE_COLUMNS) + 1) + "|"
    rows = [
        f"| {s['template']} | " + " | ".join(_cell(s, c) for c in TABLE_COLUMNS) + " |" for s in summaries
    ]
    return "\n".join([header, rule, *rows])


def _cell(summary: dict, column: str) -> str:
    """The figure; across seeds, its mean with the range (min–max) beside it."""
    value = summary.get(column, 0)
    text = str(value) if isinstance(value, int) else f"{value:.2f}"
    if f"{column}_min" in summary and summary[f"{column}_min"] != summary[f"{column}_max"]:
        text += f" ({summary[f'{column}_min']:.2f}–{summary[f'{column}_max']:.2f})"
    return text
