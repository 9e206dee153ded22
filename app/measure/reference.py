"""The yardstick for benchmarks: a bare greedy loop over llama.cpp's low-level API.

No scaffold, no stop strings, no text decoding, no callbacks: only decode and
sample, on the same model, context and threads as the engine under test.
"""

from __future__ import annotations

import time

import llama_cpp as lc

from app.engine.llama import LlamaEngine


def bare_generation_tps(engine: LlamaEngine, prompt: list[int], n_tokens: int) -> float:
    """Tokens per second of a greedy loop, timed from the first sampled token."""
    return n_tokens / sum(bare_token_times(engine, prompt, n_tokens))


def bare_token_times(engine: LlamaEngine, prompt: list[int], n_tokens: int) -> list[float]:
    """Seconds spent on each token (sample + decode) of a greedy loop, end-of-text ignored."""
    engine.clear_cache()
    arr = (lc.llama_token * len(prompt))(*prompt)
    lc.llama_decode(engine._ctx, lc.llama_batch_get_one(arr, len(prompt)))
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
    one = (lc.llama_token * 1)()
    times = []
    for _ in range(n_tokens):
        started = time.perf_counter()
        one[0] = lc.llama_sampler_sample(chain, engine._ctx, -1)
        lc.llama_decode(engine._ctx, lc.llama_batch_get_one(one, 1))
        times.append(time.perf_counter() - started)
    lc.llama_sampler_free(chain)
    engine.clear_cache()
    return times


def bare_prompt_tps(engine: LlamaEngine, prompt: list[int]) -> float:
    """Prompt evaluation in batches of the engine's batch size, nothing else."""
    engine.clear_cache()
    started = time.perf_counter()
    for start in range(0, len(prompt), engine.n_batch):
        chunk = prompt[start : start + engine.n_batch]
        arr = (lc.llama_token * len(chunk))(*chunk)
        lc.llama_decode(engine._ctx, lc.llama_batch_get_one(arr, len(chunk)))
    elapsed = time.perf_counter() - started
    engine.clear_cache()
    return len(prompt) / elapsed
