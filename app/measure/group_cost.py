"""What choosing the next speaker costs a group chat's turn: a short answer with the model asked
who speaks (each member's label scored after the prompt) against the same answer by a speaker
given, from the same warm cache; and how much of the turn's prompt the cache already held.

The scoring evaluates the prompt the reply needs anyway, and a few tokens per member after it,
which are then forgotten: the reply reuses the prompt. So the cost is those few tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from app.engine.base import PLAIN_GREEDY, Backend, Usage
from app.scaffold import Message, load_template
from app.scaffold.group import Member, group_template

MEMBERS = [Member("Mira", "a cheerful baker"), Member("Tomas", "a grumpy old fisherman"),
           Member("Ines", "a curious astronomy student")]  # fmt: skip
MESSAGE = "Tomas, how was the sea this morning?"
TURNS = 8


def _history() -> list[Message]:
    turns = []
    for n in range(TURNS):
        speaker = MEMBERS[n % len(MEMBERS)].name
        turns += [Message("user", f"Tell me one thing about day {n} at the harbour."),
                  Message("assistant", f"On day {n} the boats came back early and the market was busy.",
                          speaker=speaker)]  # fmt: skip
    return turns


def _turn(engine: Backend, speaker: str | None) -> tuple[float, str, Usage]:
    """(seconds, who spoke, usage) of a turn after the chat's previous one, which is cached;
    ``speaker`` None: the model is asked who speaks."""
    from app.chat import ChatSession

    template = group_template(MEMBERS, load_template("chat"))
    history = _history()
    session = ChatSession(engine, template, replace(PLAIN_GREEDY, max_tokens=24), history[:-1])
    session.speak(history[-1].speaker).run()
    started = time.perf_counter()
    chosen = speaker or session.choose_speaker(MESSAGE).speaker
    reply = session.speak(chosen, MESSAGE).run()
    return time.perf_counter() - started, chosen, reply.completion.usage


def group_figures(engine: Backend, repeats: int, paired: Callable) -> dict:
    _, speaker, usage = _turn(engine, None)
    chosen, given, _ = paired(lambda: _turn(engine, None)[0], lambda: _turn(engine, speaker)[0], repeats)
    cost = max(chosen - given, 0.0)
    return {
        "group_choose_ms": round(cost * 1000, 1), "group_short_answer_s": round(given, 3),
        "group_choose_share": round(cost / given, 3) if given else None,
        "group_cached_share": round(usage.cached_tokens / max(usage.prompt_tokens, 1), 3),
    }  # fmt: skip
