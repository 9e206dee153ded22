"""The yardstick for benchmarks: a bare greedy loop over llama.cpp's low-level API.

It lives in the engine layer (the only one that may call llama.cpp); ``app.measure`` times it.

No scaffold, no stop strings, no text decoding, no callbacks: only decode and
sample, on the same model, context and threads as the engine under test.
"""

from __future__ import annotations

import time

import llama_cpp as lc

from app.engine.base import Backend
from app.engine.llama import LlamaEngine


def bare_generation_tps(engine: Backend, prompt: list[int], n_tokens: int) -> float:
    """Tokens per second of a greedy loop, timed from the first sampled token."""
    return n_tokens / sum(bare_token_times(engine, prompt, n_tokens))


def bare_token_times(engine: Backend, prompt: list[int], n_tokens: int) -> list[float]:
    """Seconds spent on each token (sample + decode) of a greedy loop, end-of-text ignored."""
    _llama(engine).clear_cache()
    arr = (lc.llama_token * len(prompt))(*prompt)
    lc.llama_decode(_llama(engine).context, lc.llama_batch_get_one(arr, len(prompt)))
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
    one = (lc.llama_token * 1)()
    times = []
    for _ in range(n_tokens):
        started = time.perf_counter()
        one[0] = lc.llama_sampler_sample(chain, _llama(engine).context, -1)
        lc.llama_decode(_llama(engine).context, lc.llama_batch_get_one(one, 1))
        times.append(time.perf_counter() - started)
    lc.llama_sampler_free(chain)
    _llama(engine).clear_cache()
    return times


def bare_prompt_tps(engine: Backend, prompt: list[int]) -> float:
    """Prompt evaluation in batches of the engine's batch size, nothing else."""
    _llama(engine).clear_cache()
    started = time.perf_counter()
    for start in range(0, len(prompt), _llama(engine).n_batch):
        chunk = prompt[start : start + _llama(engine).n_batch]
        arr = (lc.llama_token * len(chunk))(*chunk)
        lc.llama_decode(_llama(engine).context, lc.llama_batch_get_one(arr, len(chunk)))
    elapsed = time.perf_counter() - started
    _llama(engine).clear_cache()
    return len(prompt) / elapsed


def clear_cache(engine: Backend) -> None:
    """Empty a local engine's KV cache: the next prompt is evaluated cold."""
    _llama(engine).clear_cache()


def flush_states(engine: Backend) -> None:
    """Write a local engine's saved KV states out now (the bench measures their size on disk)."""
    _llama(engine).flush_states()


def without_saved_states(engine: Backend):
    """A block in which the engine neither restores nor saves states: the cold path."""
    return _llama(engine).without_saved_states()


def _llama(engine: Backend) -> LlamaEngine:
    """The yardstick runs on llama.cpp in this process only."""
    if not isinstance(engine, LlamaEngine):
        raise TypeError("the bare llama.cpp loop needs a local model")
    return engine
