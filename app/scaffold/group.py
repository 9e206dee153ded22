"""Group chats: several characters in one transcript, and who speaks next.

A group's frame joins its members' descriptions in a fixed order (SillyTavern's "join character
cards"), so the frame — and the model's cache of it — stays the same whoever speaks. Each reply is
cued with the chosen member's label; every member's label ends a reply, so nobody speaks in
another's voice. Who speaks next: a member the message names answers it;
otherwise, by default, the model's own judgement — how likely it finds each member's label as
the transcript's continuation (the engine's ``continuation_logprobs``), drawn like any token —
with nobody speaking twice in a row and a silent member's odds raised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from app.errors import InputError
from app.scaffold.macros import expand
from app.scaffold.template import Template

NextSpeaker = Literal["model", "addressed", "in_turn"]
MAX_MEMBERS = 8
_DESCRIPTION_CHARS = 1200  # a member's share of the frame: a description, not a novel


@dataclass(frozen=True)
class Member:
    name: str
    description: str = ""
    example: tuple[str, str] | None = None  # one exchange in the member's voice: (person, member)


@dataclass(frozen=True)
class Choice:
    """Who speaks next and why; ``shares``: each member's share of the model's odds (empty when a
    rule chose without asking the model)."""

    speaker: str
    why: str
    shares: tuple[tuple[str, float], ...] = ()


def member_of(template: Template) -> Member:
    """A character template (a card) as a group member: its name, description and first example."""
    moment = datetime(2000, 1, 1)
    text = expand(template.preamble, "{{user}}", template.assistant_name, moment)
    example = (template.examples[0].user, template.examples[0].assistant) if template.examples else None
    return Member(template.assistant_name, " ".join(text.split())[:_DESCRIPTION_CHARS], example)


def members_from(text: str) -> list[Member]:
    """Members as the person writes them, separated by commas: ``Name=description``, a template's
    or imported card's name (its character), or a bare name."""
    return [_member_from(part) for part in text.split(",") if part.strip()]


def _member_from(spec: str) -> Member:
    from app.errors import TemplateError
    from app.scaffold.template import load_template

    name, equals, description = (part.strip() for part in spec.partition("="))
    if equals:
        return Member(name, description)
    try:
        return member_of(load_template(name))
    except TemplateError:
        return Member(name)


def group_template(members: list[Member], base: Template) -> Template:
    """The frame of a group chat: ``base``'s settings (the person's name, language, lore, the
    recall and follow-up notes, so memory works in a group too), a preamble naming everyone and
    describing each member, and the members' example lines. Its request notes are left out: they
    speak of one character's answers."""
    names = _checked_names(members, base.user_name)
    everyone = ", ".join(names[:-1]) + f" and {names[-1]}"
    lines = [f"A conversation between {base.user_name}, {everyone}. Each of them speaks in their own "
             f"voice, one at a time, and answers what was said to them."]  # fmt: skip
    lines += [f"{_ABOUT.format(name=m.name)} {m.description}" for m in members if m.description.strip()]
    scene = [f"{base.user_name}: {m.example[0]}\n{m.name}: {m.example[1]}" for m in members if m.example]
    preamble = "\n\n".join(lines) + ("\n\n" + "\n".join(scene) if scene else "")
    return replace(
        base, name="group", title=everyone, preamble=preamble, assistant_name=names[0], members=names,
        examples=(), greeting="", alternate_greetings=(), example_separator="", chat_start="",
        notes=(), avatar="", origin="", extra_stops=(*base.extra_stops, *_about_stops(names)),
    )  # fmt: skip


def _about_stops(names: tuple[str, ...]) -> tuple[str, ...]:
    """A reply that starts a line like the frame's descriptions ("About Noor: a curious student…",
    seen once in 150 scene turns) is the model writing the frame, not its turn: it ends there."""
    return tuple(f"\n{_ABOUT.format(name=name)}" for name in names)


_ABOUT = "About {name}:"


def _checked_names(members: list[Member], user_name: str) -> tuple[str, ...]:
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise InputError(f"A group has 2 to {MAX_MEMBERS} members, not {len(members)}.")
    names = tuple(m.name.strip() for m in members)
    folded = [n.casefold() for n in (*names, user_name)]
    if len(set(folded)) != len(folded):
        raise InputError("Every member of a group, and the person, needs a name of their own.")
    for name in names:
        if not name or "\n" in name or ":" in name:
            raise InputError(f"A member's name must be one line without ':' ({name!r}).")
    return names


def as_speaker(template: Template, speaker: str) -> Template:
    """The frame with ``speaker`` cued for the next reply (a member of the group)."""
    if speaker not in template.members:
        known = ", ".join(template.members)
        raise InputError(f"{speaker!r} is not a member of this group ({known}).")
    return replace(template, assistant_name=speaker)


def addressed(text: str, names: tuple[str, ...]) -> str:
    """The member a message speaks to: one called by name — set off by a comma ("What do you
    think, Mira?", "So, Tomas, …") or opening a sentence ("Mira, …", "Hey Ines, …") — else the
    first one it names; "" when it names none. Punctuation, not words, marks a call, so this holds
    in any language that sets a name off with commas."""
    for name in names:
        word = re.escape(name)
        called = rf",\s*{word}\s*[,?!.:]|,\s*{word}\s*$|(?:^|[.!?]\s+)\W*(?:\w+\s+)?{word}\s*[,!?:]"
        if re.search(called, text.strip(), re.IGNORECASE):
            return name
    found = [(match.start(), name) for name in names
             if (match := re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE))]  # fmt: skip
    return min(found)[1] if found else ""


def in_turn(names: tuple[str, ...], last: str) -> str:
    """The member after ``last`` in the group's order (the first when ``last`` is none of them)."""
    return names[(names.index(last) + 1) % len(names)] if last in names else names[0]


def choose(
    names: tuple[str, ...], rule: NextSpeaker, last_text: str, recent: list[str],
    logprobs: list[float] | None, draw: float | None = None,
) -> Choice:  # fmt: skip
    """Who speaks next. ``last_text``: the newest message; ``recent``: who said the last turns,
    oldest first ("" for the person); ``logprobs``: the model's, one per name (None: it cannot say);
    ``draw``: a number in [0, 1) to sample the model's choice with (None: its likeliest, greedy).

    A member the message names answers it, by every rule but "in_turn": the model's odds alone
    pick the named member only about half the time (the small default model follows the
    transcript's pattern — whoever answered the person last answers again), and a person who
    asks Mira expects Mira. "addressed" then goes in turn; "model" asks the model."""
    last = recent[-1] if recent else ""
    named = addressed(last_text, tuple(n for n in names if n != last))
    shares = _shares(_allowed(names, logprobs, last)) if logprobs is not None else ()
    if rule == "in_turn" or (not named and (rule == "addressed" or logprobs is None)):
        return Choice(in_turn(names, last), "in turn", shares)
    if named:
        return Choice(named, f"{named} was named", shares)
    assert logprobs is not None
    return _by_the_model(_allowed(names, logprobs, last), recent, draw)


def _allowed(names: tuple[str, ...], logprobs: list[float], last: str) -> list[tuple[str, float]]:
    """Each member's log-odds but the last speaker's: nobody speaks twice in a row unless named."""
    scored = list(zip(names, logprobs, strict=True))
    return [(name, lp) for name, lp in scored if name != last] or scored


def _by_the_model(allowed: list[tuple[str, float]], recent: list[str], draw: float | None) -> Choice:
    """A label drawn by the model's odds — what a base model writing the scene by itself would do
    — each member's odds raised by how long they have been silent (a small model's scene otherwise
    stays with two members, their odds at 0.999)."""
    waited = _shares([(name, lp + _SILENCE_NATS * _silent(name, recent)) for name, lp in allowed])
    if draw is None:
        return Choice(max(waited, key=lambda pair: pair[1])[0], "the model's likeliest", waited)
    return Choice(_drawn(waited, draw), "drawn by the model's odds", waited)


def _drawn(shares: tuple[tuple[str, float], ...], draw: float) -> str:
    total = 0.0
    for name, share in shares:
        total += share
        if draw < total:
            return name
    return shares[-1][0]


_SILENCE_NATS = 2.0  # each member turn of silence multiplies a member's odds by e² (about 7)
_MOST_SILENT = 4  # turns of silence that still raise a member's odds


def _silent(name: str, recent: list[str]) -> int:
    """How many members' turns since ``name`` last spoke (``_MOST_SILENT`` at most)."""
    turns = 0
    for speaker in reversed(recent):
        if speaker == name or turns >= _MOST_SILENT:
            break
        turns += bool(speaker)
    return min(turns, _MOST_SILENT)


def _shares(scored: list[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    top = max(lp for _, lp in scored)
    weights = [(n, math.exp(lp - top)) for n, lp in scored]
    total = sum(w for _, w in weights)
    return tuple((n, w / total) for n, w in weights)
