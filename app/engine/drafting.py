"""The local engine's token loop, with speculative decoding: more than one token per step of the
model when a cheap guess of what comes next is right.

A drafter proposes the next few tokens — from the text itself (prompt lookup: the last tokens
also occur earlier, so propose what followed them there) or from a small model of the same
vocabulary. The model then evaluates the pending token and the whole draft in one batch, with
logits at every position, and its own sampler chain (the same chain, the same random stream)
picks a token at each position in turn. A drafted token is kept while it is the one picked; the
first one that is not is replaced by the token the sampler picked instead, and the cells after
it are removed. So the reply is the one the model would have written without a draft: token
for token when greedy, and from the same distribution when sampling. Drafting pays when the
batch costs less than the tokens it saves; the draft length adapts to how often drafts hold.
This is llama.cpp's own scheme (``common/speculative.cpp``, ``examples/lookup``), in Python
around the same C calls.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import llama_cpp as lc

from app.engine.base import Generation, SamplingParams
from app.engine.decoding import Decoding, shared_length
from app.engine.minlength import EndGuard
from app.engine.reply import ReplyState

MAX_DRAFT = 16  # tokens per draft at most: longer batches cost more than a miss saves on a CPU


class Drafter(Protocol):
    def begin(self) -> None:
        """A new reply: its history need not continue the last one's."""
        ...

    def propose(self, cached: list[int], pending: int, limit: int) -> list[int]:
        """Up to ``limit`` tokens likely to follow ``cached`` and then ``pending`` (nothing when
        there is no guess). ``cached`` is the engine's own list, read and never copied, so the
        work per token does not grow with the conversation; within a reply it only grows."""
        ...

    def close(self) -> None: ...


class DraftPolicy:
    """How many tokens to draft: the length expected to give the most tokens per second, or none
    when drafting is not expected to beat one token per step. On a CPU a batch of n tokens costs
    nearly n steps for small n (here, 2 tokens 1.9 steps, 5 tokens 2.4, 17 tokens 6), so drafts
    are short or absent unless they keep being taken. What a batch costs is learned from the
    decodes themselves (the prior is this machine's CPU curve, scaled by what was seen); the
    chance that each next drafted token is taken is learned from the drafts, and drifts back to
    a hopeful prior while nothing is drafted, so a reply that turns to copying is noticed."""

    PRIOR_HITS, PRIOR_TRIALS = 4.0, 5.0  # a drafted token is taken 4 times in 5, until seen
    FORGET = 0.9  # weight of the past per draft (and, slowly, per plain step)

    def __init__(self, always: bool = False) -> None:
        self.always = always  # draft whatever is proposed (tests and the acceptance ceiling)
        self.hits, self.trials = self.PRIOR_HITS, self.PRIOR_TRIALS
        self.step_s: float | None = None  # one token decoded alone
        self.batch_s: dict[int, float] = {}  # a batch of n tokens with logits at each
        self.draft_token_s = 0.0  # the drafter's own time per drafted token (a draft model)

    def length(self, room: int) -> int:
        if self.always or room <= 0:
            return max(0, min(room, MAX_DRAFT))
        if self.step_s is None:
            return 0
        chance, reach, expected = self.hits / self.trials, 1.0, 0.0
        best, best_rate = 0, 1.0 / self.step_s
        for k in range(1, min(room, MAX_DRAFT) + 1):
            reach *= chance
            expected += reach
            rate = (1 + expected) / (self.cost(k + 1) + k * self.draft_token_s)
            if rate > best_rate:
                best, best_rate = k, rate
        return best

    def cost(self, n: int) -> float:
        """Seconds to decode a batch of ``n``: seen, else the prior curve scaled to what was seen."""
        step = self.step_s or 0.0
        if n in self.batch_s:
            return self.batch_s[n]
        scale = [seen / _prior(size, step) for size, seen in self.batch_s.items()] or [1.0]
        return _prior(n, step) * sum(scale) / len(scale)

    def plain_step(self, seconds: float) -> None:
        self.step_s = seconds if self.step_s is None else 0.8 * self.step_s + 0.2 * seconds
        self.hits += (self.PRIOR_HITS - self.hits) * 0.01
        self.trials += (self.PRIOR_TRIALS - self.trials) * 0.01

    def proposed(self, drafted: int, seconds: float) -> None:
        """The drafter's own cost (a draft model decodes each token it drafts)."""
        if drafted:
            per_token = seconds / drafted
            self.draft_token_s = (
                0.8 * self.draft_token_s + 0.2 * per_token if self.draft_token_s else per_token
            )

    def checked(self, drafted: int, accepted: int, seconds: float) -> None:
        """A draft of ``drafted`` was verified in ``seconds``, and ``accepted`` of it taken."""
        n = drafted + 1
        self.batch_s[n] = seconds if n not in self.batch_s else 0.7 * self.batch_s[n] + 0.3 * seconds
        self.hits = self.hits * self.FORGET + accepted
        self.trials = self.trials * self.FORGET + accepted + (accepted < drafted)


def _prior(n: int, step: float) -> float:
    """A CPU's batch cost in steps (measured here: 0.9 + 0.32 n, within 20 % from 2 to 16)."""
    return step * (1.0 if n == 1 else 0.9 + 0.32 * n)


class Tally:
    """Drafted and accepted tokens of one reply: the share the status line shows."""

    def __init__(self) -> None:
        self.drafted = 0
        self.accepted = 0


def run(
    decoding: Decoding, gen: Generation, params: SamplingParams, state: ReplyState, sampler,
    drafter: Drafter | None, policy: DraftPolicy, n_ctx: int, guard: EndGuard,
) -> Iterator[str]:  # fmt: skip
    """Sample the reply after the prompt (already evaluated), drafting when ``drafter`` is given
    and ``policy`` expects a draft to pay; ``guard`` holds it to its minimum length."""
    loop = _Loop(decoding, gen, params, state, sampler, policy, guard)
    if drafter is not None:
        drafter.begin()
    yield from loop.run(drafter, n_ctx)
    state.drafted, state.accepted = loop.tally.drafted, loop.tally.accepted


class _Loop:
    def __init__(
        self, decoding: Decoding, gen: Generation, params: SamplingParams, state: ReplyState, sampler,
        policy: DraftPolicy, guard: EndGuard,
    ) -> None:  # fmt: skip
        self.decoding, self.gen, self.params, self.state, self.sampler = decoding, gen, params, state, sampler
        self.guard = guard
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.produced = 0
        self.tally = Tally()
        self.policy = policy

    def run(self, drafter: Drafter | None, n_ctx: int) -> Iterator[str]:
        taken = [self.sample(-1, self.decoding.cached[-1])]
        while True:
            for token, candidates in taken:
                if self.gen.cancelled:
                    self.state.finish = "cancelled"
                    return
                shown, done = self.emit(token, candidates)
                if shown:
                    yield shown
                if done:
                    return
            taken = self.next_tokens(drafter, taken[-1][0], n_ctx)

    def next_tokens(self, drafter: Drafter | None, last: int, n_ctx: int) -> list[tuple[int, list]]:
        """The tokens after ``last`` (shown, not yet evaluated): the drafted ones the model keeps and
        the one it picks after them, or one token the plain way."""
        draft = self.draft(drafter, last, n_ctx)
        return self.verify(last, draft) if draft else [self.step(last, timed=drafter is not None)]

    def draft(self, drafter: Drafter | None, pending: int, n_ctx: int) -> list[int]:
        """A draft that fits both the reply's token limit and the context (every drafted token
        plus the one picked after them must still be allowed)."""
        room = min(self.params.max_tokens - self.produced, n_ctx - len(self.decoding.cached) - 1) - 1
        length = self.policy.length(room) if drafter is not None else 0
        if drafter is None or not length:
            return []
        started = time.perf_counter()
        draft = drafter.propose(self.decoding.cached, pending, length)
        self.policy.proposed(len(draft), time.perf_counter() - started)
        return draft

    def step(self, token: int, timed: bool) -> tuple[int, list]:
        """One token the plain way: decode it alone, sample the next (timed for the policy)."""
        started = time.perf_counter()
        self.decoding.decode_one(token)
        sampled = self.sample(-1, token)
        if timed:
            self.policy.plain_step(time.perf_counter() - started)
        return sampled

    def sample(self, index: int, previous: int) -> tuple[int, list]:
        """The token at batch ``index``, which follows ``previous`` (the reply's latest token so far,
        or the prompt's last): the guard's nudge counts the tokens produced before it."""
        state = self.state
        nudge = self.guard.nudge(self.produced + max(index, 0), previous, state.said_favoured)
        token, candidates = self.decoding.sample(self.sampler, index, self.params.n_probs, nudge)
        state.said_favoured = state.said_favoured or self.guard.favours(token)  # every sampled token is kept
        return token, candidates

    def emit(self, token: int, candidates: list) -> tuple[str, bool]:
        """Show one sampled token; True when the reply ends with it (end of text, a stop, the limit)."""
        state, params = self.state, self.params
        if self.decoding.is_end(token) and not params.ignore_eos:
            state.first_token_at = state.first_token_at or state.prompt_done
            state.finish = "stop"
            return "", True
        text = self.decoder.decode(self.decoding.piece(token))
        shown = state.add((token,), text, clean=not self.decoder.getstate()[0], candidates=candidates)
        self.produced += 1
        if state.scanner.stopped:
            state.finish = "stop"
            return shown, True
        if self.produced >= params.max_tokens:
            state.finish = "length"
            return shown, True
        return shown, False

    def verify(self, pending: int, draft: list[int]) -> list[tuple[int, list]]:
        """Evaluate ``pending`` and ``draft`` in one batch; the drafted tokens the sampler picks too,
        then the token it picks where the draft first differs (or after the whole draft)."""
        start, started = len(self.decoding.cached), time.perf_counter()
        self.decoding.decode_all_logits([pending, *draft])
        taken: list[tuple[int, list]] = []
        for index in range(len(draft) + 1):
            taken.append(self.sample(index, draft[index - 1] if index else pending))
            if index == len(draft) or taken[-1][0] != draft[index]:
                break
        accepted = len(taken) - 1
        self.decoding.forget_after(start + 1 + accepted)
        self.tally.drafted += len(draft)
        self.tally.accepted += accepted
        self.policy.checked(len(draft), accepted, time.perf_counter() - started)
        return taken


class LookupDrafter:
    """Prompt lookup: when the last 4 tokens occurred before, propose the tokens that followed
    their latest occurrence. The index of 4-grams is built on the first proposal (after the first
    token is shown) and grows with the reply: each new token adds one entry."""

    SIZE = 4  # 3-grams matched chat text often and wrongly: chat 0.958x with them, 1.029x without

    def __init__(self) -> None:
        self._seen: dict[tuple[int, ...], int] = {}
        self._indexed = 0  # history positions whose n-grams are in the index

    def begin(self) -> None:
        self._seen, self._indexed = {}, 0

    def propose(self, cached: list[int], pending: int, limit: int) -> list[int]:
        self._index(cached)
        follows = self._seen.get((*cached[1 - self.SIZE :], pending))
        if follows is None:
            return []
        draft = cached[follows : follows + limit]
        if len(draft) < limit and follows + len(draft) == len(cached):  # it runs into the pending one
            draft.append(pending)
        return draft

    def _index(self, cached: list[int]) -> None:
        """Every 4-gram of ``cached`` mapped to where the token after it is (latest wins); the one
        that ends ``cached`` is followed by the pending token, at ``len(cached)``."""
        for end in range(max(self._indexed, self.SIZE), len(cached) + 1):
            self._seen[tuple(cached[end - self.SIZE : end])] = end
        self._indexed = len(cached) + 1

    def close(self) -> None:
        self._seen = {}


class ModelDrafter:
    """A small model of the same vocabulary drafts greedily in its own context, which keeps the
    history it has seen so each proposal evaluates only what is new (and forgets its rejected
    guesses). Within a reply the two histories agree up to where they last met, so only the tail
    after it is compared."""

    def __init__(self, decoding: Decoding) -> None:
        self.decoding = decoding
        self._greedy = lc.llama_sampler_init_greedy()
        self._never = threading.Event()
        self._agreed = 0  # tokens known to be the same in both histories

    def begin(self) -> None:
        self._agreed = 0

    def propose(self, cached: list[int], pending: int, limit: int) -> list[int]:
        own = self.decoding
        start = min(self._agreed, len(own.cached), len(cached))
        keep = start + shared_length(own.cached[start:], cached[start:])
        own.forget_after(keep)
        own.decode([*cached[keep:], pending], self._never)
        self._agreed = len(cached) + 1
        draft: list[int] = []
        while True:
            draft.append(lc.llama_sampler_sample(self._greedy, own.ctx, -1))
            if len(draft) >= limit or own.is_end(draft[-1]):
                return draft
            own.decode_one(draft[-1])

    def close(self) -> None:
        if self._greedy:
            lc.llama_sampler_free(self._greedy)
            self._greedy = None


VOCAB_SIZE_SLACK = 128  # llama.cpp's own allowance: padding rows some conversions add


def vocabulary_mismatch(target: Decoding, draft: Decoding) -> str:
    """Why ``draft`` cannot draft for ``target`` ("" when it can): drafted token ids are checked
    as the target's own, so both must mean the same text by the same id. The same checks as
    llama.cpp's ``common_speculative_are_compatible``: the kind, the size (within the padding
    some conversions add), and the text of tokens across the whole shared range."""
    ours, theirs = describe_vocabulary(draft), describe_vocabulary(target)
    sizes = lc.llama_vocab_n_tokens(draft.vocab), lc.llama_vocab_n_tokens(target.vocab)
    same_kind = lc.llama_vocab_type(draft.vocab) == lc.llama_vocab_type(target.vocab)
    if not same_kind or abs(sizes[0] - sizes[1]) > VOCAB_SIZE_SLACK:
        return f"its vocabulary ({ours}) is not the target's ({theirs})"
    shared = min(sizes)
    for token in range(0, shared, max(1, shared // 997)):
        mine, yours = draft.piece(token), target.piece(token)
        if mine != yours:
            return f"its vocabulary ({ours}) differs from the target's: token {token} is {mine!r}"
    return ""


_VOCAB_KINDS = {1: "SentencePiece", 2: "BPE", 3: "WordPiece", 4: "Unigram", 5: "RWKV"}


def describe_vocabulary(decoding: Decoding) -> str:
    """ "BPE, 49,152 tokens": what a person can compare between two models."""
    kind = _VOCAB_KINDS.get(lc.llama_vocab_type(decoding.vocab), "unknown kind")
    return f"{kind}, {lc.llama_vocab_n_tokens(decoding.vocab):,} tokens"
