"""Several alternatives of one reply, decoded together in one llama.cpp context.

The prompt is evaluated once, in sequence 0, then copied to sequences
1…n-1 with ``llama_memory_seq_cp``: in the unified KV cache that only tags
the prompt's cells with more sequence ids, so nothing is evaluated or stored
twice. Each step then decodes one token of every sequence still running in a
single batch — on a CPU that costs little more than one token, because the
weights are read once for all of them. Each alternative has its own sampler
(seed + i) and its own stop hold-back, so each ends at the speaker label on
its own. Afterwards only the prompt stays cached, in sequence 0.
"""

from __future__ import annotations

import codecs
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import llama_cpp as lc

from app.engine.base import Alternatives, SamplingParams
from app.engine.decoding import Decoding
from app.engine.minlength import EndGuard, Nudges
from app.engine.reply import ReplyState


def run(
    engine: Decoding, alts: Alternatives, prompt: list[int], reused: int, params: SamplingParams,
    stop: list[str], tokenize: Callable[[str], list[int]], n_ctx: int, guard: EndGuard,
) -> Iterator[tuple[int, str]]:  # fmt: skip
    """``reused``: how much of ``prompt`` is already cached (the engine kept the shared prefix);
    ``guard`` holds each alternative to the reply's minimum length."""
    states = [ReplyState(stop) for _ in range(alts.n)]
    if engine.decode(prompt[reused:], alts.cancel_event):
        try:
            yield from _grow(engine, alts, states, len(prompt), params, n_ctx, guard)
        finally:
            _keep_only_the_prompt(engine, alts.n, len(prompt))
    else:
        for state in states:
            state.finish = "cancelled"
    for index, state in enumerate(states):
        tail = state.flush()
        if tail:
            yield index, tail
    alts.results = [  # alternatives after the first found the whole prompt in cells they share
        state.completion(len(prompt), reused if index == 0 else len(prompt), tokenize)
        for index, state in enumerate(states)
    ]


def budget(n_ctx: int, n_prompt: int, n: int, max_tokens: int) -> int:
    """Tokens each alternative may use: all of them must fit in the context beside the prompt."""
    return max(1, min(max_tokens, (n_ctx - n_prompt) // n))


def _grow(
    engine: Decoding, alts: Alternatives, states: list[ReplyState], n_prompt: int, params: SamplingParams,
    n_ctx: int, guard: EndGuard,
) -> Iterator[tuple[int, str]]:  # fmt: skip
    seed = params.seed if params.seed is not None else random.getrandbits(31)
    samplers = [engine.sampler(replace(params, seed=seed + i), engine.cached) for i in range(alts.n)]
    for sequence in range(1, alts.n):
        lc.llama_memory_seq_cp(engine.memory, 0, sequence, -1, -1)
    batch = lc.llama_batch_init(alts.n, 0, 1)
    now = time.perf_counter()
    for state in states:
        state.prompt_done = now
    try:
        steps = budget(n_ctx, n_prompt, alts.n, params.max_tokens)
        yield from _steps(engine, alts, states, samplers, batch, n_prompt, steps, (params, guard))
    finally:
        lc.llama_batch_free(batch)
        for sampler in samplers:
            lc.llama_sampler_free(sampler)


def _steps(engine, alts, states, samplers, batch, n_prompt, steps, rules) -> Iterator[tuple[int, str]]:
    """One token of every running alternative per decode call, until each has stopped.
    ``rules``: the sampling parameters and the minimum-length guard."""
    decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in states]
    at = dict.fromkeys(range(alts.n), -1)  # where each alternative's logits are in the last batch
    last = dict.fromkeys(range(alts.n), engine.cached[-1])  # each one's latest token
    for step in range(steps):
        if alts.cancelled:
            for index in at:
                states[index].finish = "cancelled"
            return
        running = []
        for index, logits_at in at.items():
            state = states[index]
            nudge = rules[1].nudge(state.generated, last[index], state.said_favoured)
            token, shown = _next(engine, samplers[index], (logits_at, nudge), state, decoders[index], rules)
            if shown:
                yield index, shown
            if token is not None:
                running.append((index, token))
                last[index] = token
        if not running:
            return
        _fill(batch, running, n_prompt + step)
        engine.check(lc.llama_decode(engine.ctx, batch))
        at = {index: row for row, (index, _token) in enumerate(running)}


def _next(
    engine,
    sampler,
    where: tuple[int, Nudges],
    state: ReplyState,
    decoder,
    rules: tuple[SamplingParams, EndGuard],
) -> tuple[int | None, str]:
    """Sample one alternative's next token: (the token to decode, or None if it ended; text shown).
    ``where``: where its logits are in the last batch, and the guard's nudge to them; ``rules``:
    the sampling parameters and the guard."""
    params, guard = rules
    token, candidates = engine.sample(sampler, where[0], params.n_probs, where[1])
    state.said_favoured = state.said_favoured or guard.favours(token)
    if params.best_of > 1:
        state.logprobs.append(engine.logprob(where[0], token))
    if engine.is_end(token) and not params.ignore_eos:
        state.first_token_at = state.first_token_at or state.prompt_done
        state.finish = "stop"
        return None, ""
    text = decoder.decode(engine.piece(token))
    shown = state.add((token,), text, clean=not decoder.getstate()[0], candidates=candidates)
    if state.scanner.stopped:
        state.finish = "stop"
        return None, shown
    return token, shown


def _fill(batch, running: list[tuple[int, int]], position: int) -> None:
    batch.n_tokens = len(running)
    for row, (sequence, token) in enumerate(running):
        batch.token[row] = token
        batch.pos[row] = position
        batch.n_seq_id[row] = 1
        batch.seq_id[row][0] = sequence
        batch.logits[row] = 1


def _keep_only_the_prompt(engine: Decoding, n: int, n_prompt: int) -> None:
    """Drop every alternative's cells; sequence 0 keeps the prompt for the next turn's reuse."""
    for sequence in range(1, n):
        lc.llama_memory_seq_rm(engine.memory, sequence, -1, -1)
    lc.llama_memory_seq_rm(engine.memory, 0, n_prompt, -1)
    del engine.cached[n_prompt:]
