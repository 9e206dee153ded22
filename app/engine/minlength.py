"""A minimum reply length: a reply that was asked to be long does not end after one line.

A base model asked for a story in a transcript often writes one sentence, a new line and the
next speaker's label: the turn ends there, however the request was worded. vLLM's
``min_tokens`` and text-generation-webui's ``min_length`` answer this by banning end-of-text
until a reply has that many tokens. In a transcript the turn also ends at a stop string (the next
speaker's label on a new line), so until the minimum is reached the tokens that open one are
banned too, where a line starts. Past the minimum the same tokens are made likelier at each new
line, the longer the reply, so it ends at a paragraph break instead of the token limit. What the
model may write is otherwise unchanged: only those few logits move, before the sampler chain
runs; the chain and its random stream stay the same.

The same path lifts the words a reply to a question about the user is likely to need: the words
of what the user told before, which the recall note quotes (``FAVOUR`` below).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llama_cpp as lc


class EndGuard:
    """How a long reply's ending is steered: until ``min_tokens`` have been produced, end-of-text
    cannot be picked, nor a speaker's name (a model kept from writing "User:" on a new line
    writes "The User:" instead), and right after a new line neither can the first token of a
    stop that starts a line; after that, at each new line, those tokens gain ``END_RAMP`` nats per token
    beyond the minimum (the exponential length penalty of Hugging Face's ``generate``, in logit
    space), so the reply ends at a paragraph break rather than running to the token limit."""

    END_RAMP = 0.1

    def __init__(
        self, vocab, piece: Callable[[int], bytes], tokenize: Callable[[str], list[int]], stop: list[str],
        min_tokens: int, favour: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.min_tokens = min_tokens
        self._favoured = favoured_tokens(favour, tokenize)
        self._favoured_set = frozenset(self._favoured)
        self._piece = piece
        self._enders = end_tokens(vocab) if min_tokens > 0 else ()
        self._openers = opener_tokens(stop, tokenize) if min_tokens > 0 else ()
        self._anywhere = (
            tuple(sorted({*self._enders, *speaker_tokens(stop, tokenize)})) if min_tokens > 0 else ()
        )

    def nudge(self, produced: int, previous: int, said: bool = False) -> Nudges:
        """What to add to which logits for the token after ``previous``, with ``produced`` reply
        tokens before it: the favoured words' lift in the reply's first ``FAVOUR_SPAN`` tokens
        until one of their tokens is ``said`` (held on, greedy wrote "Lisbon is Lisbon Lisbon…"),
        and the ending's steering (minus infinity before the minimum, a growing boost after it)."""
        lifting = self._favoured and produced < FAVOUR_SPAN and not said
        favour = ((self._favoured, FAVOUR),) if lifting else ()
        return favour + self._ending(produced, previous)

    def favours(self, token: int) -> bool:
        """Whether ``token`` is one of the favoured words': once written, their lift ends."""
        return token in self._favoured_set

    def _ending(self, produced: int, previous: int) -> Nudges:
        if not self.min_tokens:
            return NO_NUDGE
        at_line_start = self._piece(previous).endswith(b"\n")
        if produced < self.min_tokens:
            return (((self._anywhere + self._openers if at_line_start else self._anywhere), -math.inf),)
        if at_line_start:
            return ((self._enders + self._openers, self.END_RAMP * (produced - self.min_tokens)),)
        return NO_NUDGE


Nudge = tuple[tuple[int, ...], float]  # these tokens' logits move by this much
Nudges = tuple[Nudge, ...]
NO_NUDGE: Nudges = ()

# A word the user told and is now asked about (the recall note's quote, scaffold/recall.py) is
# made this much likelier, in nats, in the reply's first tokens: with the quote right above the
# reply, the 270M model still wrote "A car is blue." to "What colour is my car?" after "My car is
# red.". A lift, not a ban: the model still chooses, and after FAVOUR_SPAN tokens it is free.
# Memory recall with the app's sampling, 3 seeds (tune / held half): 0.67 / 0.72 without the lift,
# 0.83 / 0.89 at 2 nats, 0.94 / 0.94 at 2.5 and at 3, 1.00 / 0.94 at 4 (docs/eval.md).
FAVOUR = 3.0
FAVOUR_SPAN = 16


def favoured_tokens(words: tuple[str, ...], tokenize: Callable[[str], list[int]]) -> tuple[int, ...]:
    """Every token of each word, as it is spelled in running text (" Biscuit") and at a line's
    start ("Biscuit"), capitalised or not."""
    found: set[int] = set()
    for word in words:
        for spelling in {word, word.lower(), word.capitalize()}:
            found.update(tokenize(" " + spelling))
            found.update(tokenize(spelling))
    return tuple(sorted(found))


def end_tokens(vocab) -> tuple[int, ...]:
    """The vocabulary's end-of-text and end-of-turn tokens (those it names)."""
    named = (lc.llama_vocab_eos(vocab), lc.llama_vocab_eot(vocab))
    return tuple(sorted({token for token in named if token >= 0}))


def speaker_tokens(stop: list[str], tokenize: Callable[[str], list[int]]) -> tuple[int, ...]:
    """The first token of each speaker's name, as a word in running text (" User") and at the
    start of a line ("User"), for every stop that is a new line, a name and a colon."""
    names = {text.strip("\n")[:-1].strip() for text in stop if text.startswith("\n") and text.endswith(":")}
    found = {
        tokens[0] for name in names if name for tokens in (tokenize(name), tokenize(" " + name)) if tokens
    }
    return tuple(sorted(found))


def remote_bans(stop: list[str], tokenize: Callable[[str], list[int]]) -> tuple[int, ...]:
    """What a server is told it may not pick while a reply is below its minimum: the speakers'
    names and the stops' openers. A server's bias holds for the whole request, not only at the
    start of a line, so "(" and "###" are banned anywhere in it (held open, the model writes the
    frame's notes, "(The Assistant explains…)", in place of ending); end-of-text is banned by
    ``ignore_eos``."""
    return tuple(sorted({*speaker_tokens(stop, tokenize), *opener_tokens(stop, tokenize)}))


def opener_tokens(stop: list[str], tokenize: Callable[[str], list[int]]) -> tuple[int, ...]:
    """The first token of each stop that starts a line ("\\nUser:" → "User"): the token that,
    written after a new line, begins the next speaker's turn."""
    openers = set()
    for text in stop:
        label = text.lstrip("\n")
        if label == text or not label.strip():
            continue
        for spelling in {label, label.lower(), label.upper()}:  # "user:" would not stop, and leak
            tokens = tokenize(spelling)
            if tokens:
                openers.add(tokens[0])
    return tuple(sorted(openers))
