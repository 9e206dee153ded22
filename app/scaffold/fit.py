"""Fitting a conversation into the model's context window.

Measured in the model's own tokens by the caller; this module only decides
which pieces stay. The header (preamble and examples), the newest user
message and the cue always stay; the oldest turns go first, a user turn
together with the reply that followed it, so the transcript never starts
with an answer to a question that is no longer there.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import ContextOverflow
from app.scaffold.transcript import Piece


@dataclass(frozen=True)
class Fitted:
    pieces: list[Piece]
    sizes: list[int]
    dropped_turns: int

    @property
    def total(self) -> int:
        return sum(self.sizes)


def fit_pieces(pieces: list[Piece], sizes: list[int], budget: int, chunk: int = 0) -> Fitted:
    """Drop the oldest history turns until the prompt fits in ``budget`` tokens. ``chunk`` > 0
    (an engine that cannot shift its cache): drop on a grid of that many tokens counted from the
    start of the history, so the first kept turn stays the same for many turns and the prompt's
    prefix stays cached, instead of changing at every turn. The header, what is inserted among
    the turns (lore, the author's note), the newest message and the cue always stay."""
    turns = [i for i, p in enumerate(pieces) if p.kind in ("user", "assistant")]
    history = turns[:-1]  # the newest message always stays
    fixed = sum(sizes) - sum(sizes[i] for i in history)
    if fixed > budget:
        raise ContextOverflow(_overflow_message(pieces, sizes, fixed, budget), needed=fixed)
    removed, dropped = 0, 0
    while sum(sizes) - removed > budget and history:
        removed, dropped = _drop_oldest(pieces, sizes, history, removed, dropped)
    target = -(-removed // chunk) * chunk if chunk and removed else 0
    while removed < target and history:
        removed, dropped = _drop_oldest(pieces, sizes, history, removed, dropped)
    gone = set(turns[:-1]).difference(history)
    keep = [i for i in range(len(pieces)) if i not in gone]
    return Fitted([pieces[i] for i in keep], [sizes[i] for i in keep], dropped)


def _overflow_message(pieces: list[Piece], sizes: list[int], fixed: int, budget: int) -> str:
    """Names what is too long: the message, or the frame (a 120 KB persona is not "this message")."""
    header = sum(size for piece, size in zip(pieces, sizes, strict=True) if piece.kind == "header")
    if header > budget // 2:
        return (f"The frame is too long: its preamble, persona, examples and lore need {header} tokens, "
                f"and only {budget} fit with room for the reply. Shorten the frame or raise the context "
                "size.")  # fmt: skip
    return (f"This message is too long: the prompt needs {fixed} tokens and only {budget} fit with room "
            "for the reply. Shorten it or raise the context size.")  # fmt: skip


def _drop_oldest(
    pieces: list[Piece], sizes: list[int], history: list[int], removed: int, dropped: int
) -> tuple[int, int]:
    """Remove the oldest exchange from ``history``: (tokens removed so far, turns dropped so far)."""
    for index in _oldest_exchange(pieces, history):
        history.remove(index)
        removed += sizes[index]
        dropped += 1
    return removed, dropped


def _oldest_exchange(pieces: list[Piece], history: list[int]) -> list[int]:
    """The oldest turn, and the assistant reply right after it if it was a user turn."""
    first = history[0]
    if pieces[first].kind == "user" and len(history) > 1 and pieces[history[1]].kind == "assistant":
        return [first, history[1]]
    return [first]
