"""What a lorebook costs a turn: time to first token of the next message in a 12-turn chat whose
frame has a 20-entry lorebook, when the message fires three entries and when it fires none.

Fired entries are placed near the end of the prompt (under the newest message), so the frame and
the history stay in the KV cache; only the last exchange, the message and the entries are new.
The same turn with the entries placed as written (in the frame) is measured beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from app.engine.base import PLAIN_GREEDY, Backend
from app.scaffold import Message, Template, load_template
from app.scaffold.lorebook import Lorebook, LoreEntry

FIRING = "What about the ship in the storm near the reef?"  # fires ship, storm and reef
PLAIN = "What about the boat in the rain near the rocks?"  # the same length, fires nothing
TURNS = 12


def lore_book(keep_cache: bool = True) -> Lorebook:
    topics = ["ship", "storm", "reef"] + [f"island{n}" for n in range(17)]
    entries = tuple(
        LoreEntry(f"The {t}: sailors tell old stories about the {t}, and every captain knows them.",
                  keys=(t,), position="after_char", name=t)
        for t in topics
    )  # fmt: skip
    return Lorebook(entries, keep_cache=keep_cache)


def _history() -> list[Message]:
    turns = []
    for n in range(TURNS):
        reply = f"Fact {n}: the harbour has a long history of trade and fishing. " * 3
        turns += [
            Message("user", f"Tell me fact {n} about the harbour, please."),
            Message("assistant", reply),
        ]
    return turns


def _ttft(engine: Backend, template: Template, message: str) -> float:
    """The next turn's time to first token, the chat's previous turn already in the cache."""
    from app.chat import ChatSession

    session = ChatSession(engine, template, replace(PLAIN_GREEDY, max_tokens=1), _history()[:-2])
    session.ask(_history()[-2].text)
    return session.ask(message).completion.usage.ttft_s


def lorebook_figures(engine: Backend, repeats: int, paired: Callable) -> dict:
    fast = replace(load_template("chat"), lorebook=lore_book())
    written = replace(fast, lorebook=lore_book(keep_cache=False))
    fires, plain, ratio = paired(
        lambda: _ttft(engine, fast, FIRING), lambda: _ttft(engine, fast, PLAIN), repeats
    )
    _, _, written_ratio = paired(
        lambda: _ttft(engine, written, FIRING), lambda: _ttft(engine, written, PLAIN), repeats
    )
    return {
        "lore_ttft_fired_s": round(fires, 4), "lore_ttft_none_s": round(plain, 4),
        "lore_ttft_ratio": round(ratio, 3), "lore_ttft_ratio_as_written": round(written_ratio, 3),
    }  # fmt: skip
