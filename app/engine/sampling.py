"""The native sampler chain, built from ``SamplingParams`` and told what came before.

Order: top-k first (so the samplers after it never scan Gemma's 262k-token vocabulary, as llama.h
warns), then the repetition penalty and DRY, then greedy — or top-p, min-p, XTC, temperature and
the seeded draw. Each sampler that looks back is fed the history it should see before the chain
is assembled: the prompt only when ``penalize_prompt`` says so. A penalty over the prompt falls on
the very names the user gave and on the speaker labels every turn repeats: measured on the tune
half (docs/eval.md), memory recall was 0.06 with the repetition penalty over the prompt, 0.44 with
DRY over it, 0.78 with neither.
"""

from __future__ import annotations

import ctypes

import llama_cpp as lc

from app.engine.base import SamplingParams

DRY_BREAKERS = ("\n", ":", '"', "*")


def build_chain(vocab, params: SamplingParams, history: list[int], made: dict):
    """A chain the caller frees with ``llama_sampler_free``; ``history``: the prompt's tokens;
    ``made``: samplers kept between replies for this vocabulary (see ``_dry``)."""
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    add = lambda sampler: lc.llama_sampler_chain_add(chain, sampler)  # noqa: E731
    if params.ignore_eos:
        add(_end_of_text_ban(vocab))
    if params.top_k > 0:  # 0 means every token, as in llama.cpp (slower penalties)
        add(lc.llama_sampler_init_top_k(params.top_k))
    seen = history if params.penalize_prompt else []
    if params.repeat_penalty != 1.0:
        add(_fed(_penalties(vocab, params), _tail(seen, params.repeat_last_n)))
    if params.dry_multiplier > 0:
        add(_fed(_dry(vocab, params, made), _tail(seen, params.dry_last_n)))
    if params.temperature <= 0:
        add(lc.llama_sampler_init_greedy())
        return chain
    add(lc.llama_sampler_init_top_p(params.top_p, 1))
    add(lc.llama_sampler_init_min_p(params.min_p, 1))
    seed = lc.LLAMA_DEFAULT_SEED if params.seed is None else params.seed & 0xFFFFFFFF
    if params.xtc_probability > 0:
        add(lc.llama_sampler_init_xtc(params.xtc_probability, params.xtc_threshold, 1, seed))
    add(lc.llama_sampler_init_temp(params.temperature))
    add(lc.llama_sampler_init_dist(seed))
    return chain


def _tail(history: list[int], n: int) -> list[int]:
    """The last ``n`` tokens: 0 means none and -1 all, as llama.cpp reads its ``last_n`` values."""
    return history if n < 0 else history[-n:] if n else []


def _fed(sampler, tokens: list[int]):
    for token in tokens:
        lc.llama_sampler_accept(sampler, token)
    return sampler


def _penalties(vocab, params: SamplingParams):
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    return lc.llama_sampler_init_penalties(n_vocab, params.repeat_last_n, params.repeat_penalty, 0.0, 0.0)


def _dry(vocab, params: SamplingParams, made: dict):
    """A DRY sampler with no history, cloned from one kept per setting in ``made`` (the caller's,
    freed with its vocabulary): setting one up finds every token that holds a sequence breaker,
    which reads the whole vocabulary (76 ms for Gemma's, on every reply)."""
    key = (params.dry_multiplier, params.dry_base, params.dry_allowed_length, params.dry_last_n)
    if key not in made:
        made[key] = _new_dry(vocab, params)
    return lc.llama_sampler_clone(made[key])


def free_made(made: dict) -> None:
    for sampler in made.values():
        lc.llama_sampler_free(sampler)
    made.clear()


def _new_dry(vocab, params: SamplingParams):
    """DRY ("don't repeat yourself", as in KoboldCpp and SillyTavern): a repeat of the history
    longer than ``dry_allowed_length`` tokens is penalised, more the longer it runs, and a
    sequence breaker ends the run. The breakers are SillyTavern's and KoboldCpp's defaults; a newline
    and a colon also cover every speaker label ("\nUser:"), so starting the next turn is never
    penalised, a name after "is" costs little, and a list copying itself costs a lot."""
    breakers = [text.encode("utf-8") for text in DRY_BREAKERS]
    array = (ctypes.c_char_p * len(breakers))(*breakers)
    return lc.llama_sampler_init_dry(
        vocab, params.dry_multiplier, params.dry_base, params.dry_allowed_length, params.dry_last_n,
        array, len(breakers),
    )  # fmt: skip


def _end_of_text_ban(vocab):
    ends = {lc.llama_vocab_eos(vocab), lc.llama_vocab_eot(vocab)} - {-1}
    biases = (lc.llama_logit_bias * len(ends))(*[lc.llama_logit_bias(t, float("-inf")) for t in ends])
    return lc.llama_sampler_init_logit_bias(lc.llama_vocab_n_tokens(vocab), len(ends), biases)
