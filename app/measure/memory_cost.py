"""What a memory note costs a turn: time to first token of a question the recall step answers
from the chat's first message, far above, against a question of the same length it leaves
alone, and how much of the note's prompt was already cached; and what type-ahead saves a turn.

The note goes under the newest message, so the frame and the history stay in the KV cache; only
the last exchange, the message and the note are new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from app.engine.base import PLAIN_GREEDY, Backend, Usage
from app.scaffold import Message, load_template

RECALLED = "What is my dog called again?"  # the recall step quotes the first message
PLAIN = "What is the tide called again?"  # the same length; nothing to quote
TURNS = 12


def _history() -> list[Message]:
    turns = [Message("user", "My dog is called Biscuit."), Message("assistant", "What a lovely name!")]
    for n in range(TURNS):
        reply = f"Fact {n}: the harbour has a long history of trade and fishing. " * 3
        asked = f"Tell me fact {n} about the harbour, please."
        turns += [Message("user", asked), Message("assistant", reply)]
    return turns


def _usage(engine: Backend, message: str) -> Usage:
    """The next turn's usage, the chat's previous turn already in the cache."""
    from app.chat import ChatSession

    history = _history()
    session = ChatSession(engine, load_template("chat"), replace(PLAIN_GREEDY, max_tokens=1), history[:-2])
    session.ask(history[-2].text)
    return session.ask(message).completion.usage


def memory_note_figures(engine: Backend, repeats: int, paired: Callable) -> dict:
    noted, plain, ratio = paired(
        lambda: _usage(engine, RECALLED).ttft_s, lambda: _usage(engine, PLAIN).ttft_s, repeats
    )
    usage = _usage(engine, RECALLED)
    return {
        "memory_note_ttft_s": round(noted, 4), "memory_none_ttft_s": round(plain, 4),
        "memory_note_ttft_ratio": round(ratio, 3),
        "memory_note_cached_share": round(usage.cached_tokens / max(usage.prompt_tokens, 1), 3),
    }  # fmt: skip


TYPED = (
    "I am planning a walking trip along the coast next spring with two friends, and we would like "
    "to know which small towns have good places to stay and what we should pack for rain. Is it "
    "better to walk from north to south?"
)  # about 60 tokens


def _typed_ttft(engine: Backend, typed_ahead: bool) -> float:
    """The next turn's time to first token in a warm 12-turn chat, the message evaluated while
    it was typed (type-ahead) or only at Send."""
    import threading

    from app.chat import ChatSession

    history = _history()
    session = ChatSession(engine, load_template("chat"), replace(PLAIN_GREEDY, max_tokens=1), history[:-2])
    session.ask(history[-2].text)
    if typed_ahead:
        session.prefill(TYPED, threading.Event())
    return session.ask(TYPED).completion.usage.ttft_s


def typeahead_figures(engine: Backend, repeats: int, paired: Callable) -> dict:
    ahead, at_send, ratio = paired(
        lambda: _typed_ttft(engine, True), lambda: _typed_ttft(engine, False), repeats
    )
    return {"typeahead_ttft_s": round(ahead, 4), "typeahead_ttft_at_send_s": round(at_send, 4),
            "typeahead_ttft_over_warm": round(ratio, 3),
            "typeahead_cpu_waste": _typing_waste(engine)}  # fmt: skip


PAUSE_EVERY_WORDS = 3  # a pause long enough for type-ahead to start, every few words


def _typing_waste(engine: Backend) -> int:
    """Tokens type-ahead evaluates while ``TYPED`` is typed (a pause every few words, each pause
    evaluating the text so far) that Send then cannot use: a word cut mid-way tokenises
    differently once finished, and what was evaluated after it is evaluated again."""
    import threading

    from app.chat import ChatSession

    words, history = TYPED.split(), _history()
    usages = []
    for typing in (True, False):
        params = replace(PLAIN_GREEDY, max_tokens=1)
        session = ChatSession(engine, load_template("chat"), params, history[:-2])
        session.ask(history[-2].text)
        evaluated = 0
        for end in range(PAUSE_EVERY_WORDS, len(words) if typing else 0, PAUSE_EVERY_WORDS):
            evaluated += session.prefill(" ".join(words[:end]), threading.Event())
        usages.append((evaluated, session.ask(TYPED).completion.usage.cached_tokens))
    (evaluated, cached_typed), (_, cached_plain) = usages
    return max(evaluated - (cached_typed - cached_plain), 0)
