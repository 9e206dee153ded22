"""The llama.cpp engine with the real default model (Gemma 3 270M base)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from app.engine.base import SamplingParams
from app.errors import EngineBusy

pytestmark = pytest.mark.model


def prompt_of(engine, text):
    return engine.start_tokens() + engine.tokenize(text)


def test_greedy_continuation_is_repeatable_and_spelled_by_its_tokens(engine, greedy):
    prompt = prompt_of(engine, "The capital of France is Paris. The capital of Italy is")
    engine.clear_cache()  # both cold: a prefix left by an earlier test changes the batch split
    first = engine.generate(prompt, replace(greedy, max_tokens=12), []).run()
    engine.clear_cache()
    second = engine.generate(prompt, replace(greedy, max_tokens=12), []).run()
    assert first.text == second.text
    assert "Rome" in first.text
    assert first.finish_reason == "length" and first.usage.completion_tokens == 12
    assert engine.detokenize(list(first.tokens)) == first.text


def test_stop_string_is_held_back_never_shown_then_retracted(engine, greedy):
    prompt = prompt_of(engine, "Count: one, two, three, four, five, six")
    free = engine.generate(prompt, replace(greedy, max_tokens=16), []).run().text
    assert ", eight" in free  # the model counts on; stop in the middle of that
    generation = engine.generate(prompt, replace(greedy, max_tokens=16), [", eight"])
    chunks = list(generation)
    shown = "".join(chunks)
    assert shown == free[: free.index(", eight")]
    assert generation.result.finish_reason == "stop"
    assert generation.result.text == shown
    # Every chunk, as it arrived, was a prefix of the final text: nothing was retracted.
    so_far = ""
    for chunk in chunks:
        so_far += chunk
        assert shown.startswith(so_far)


def test_cancel_takes_effect_within_one_token(engine, greedy):
    prompt = prompt_of(engine, "Once upon a time")
    generation = engine.generate(prompt, replace(greedy, max_tokens=200), [])
    for seen, _chunk in enumerate(generation, 1):
        if seen == 3:
            generation.cancel()
    result = generation.result
    assert result.finish_reason == "cancelled"
    assert result.usage.completion_tokens <= 4


def test_cancel_from_another_thread(engine, greedy):
    prompt = prompt_of(engine, "Once upon a time")
    generation = engine.generate(prompt, replace(greedy, max_tokens=500), [])
    first_chunk = threading.Event()
    counts = []

    def consume():
        for _ in generation:
            first_chunk.set()
            counts.append(1)

    worker = threading.Thread(target=consume)
    worker.start()
    assert first_chunk.wait(30)
    generation.cancel()
    worker.join(30)
    assert not worker.is_alive()
    assert generation.result.finish_reason == "cancelled"
    assert generation.result.usage.completion_tokens < 500


def test_utf8_split_across_tokens_never_shows_replacement_char(engine, greedy):
    # Flamingo and rare CJK characters have no token of their own: each is spelled by 4 byte tokens.
    assert len(engine.tokenize("🦩")) == 4 and len(engine.tokenize("𠮷")) == 4
    prompt = prompt_of(engine, "Emoji and kanji: 🦩🫠🦩🫠 𠮷𪚥𠮷𪚥 東京 🦩🫠🦩")
    generation = engine.generate(prompt, replace(greedy, max_tokens=40), [])
    chunks = list(generation)
    text = "".join(chunks)
    assert "\ufffd" not in text
    assert "🦩" in text or "𠮷" in text
    assert all("\ufffd" not in c for c in chunks)
    assert engine.detokenize(list(generation.result.tokens)) == text


def test_one_generation_at_a_time(engine, greedy):
    prompt = prompt_of(engine, "Hello")
    first = engine.generate(prompt, greedy, [])
    with pytest.raises(EngineBusy, match="already"):
        engine.generate(prompt, greedy, [])
    first.run()
    engine.generate(prompt, replace(greedy, max_tokens=2), []).run()  # free again


def test_closing_an_unstarted_generation_frees_the_engine(engine, greedy):
    prompt = prompt_of(engine, "Hello")
    engine.generate(prompt, greedy, []).close()
    engine.generate(prompt, replace(greedy, max_tokens=2), []).run()


def test_prefix_cache_evaluates_only_new_tokens_and_changes_nothing(engine, greedy):
    # Penalty off: with it, this list puts "lime" and "and" within float noise of each other,
    # and a warm run evaluates the prompt in other batches than a cold one.
    greedy = replace(greedy, repeat_penalty=1.0)
    base = prompt_of(engine, "A list of fruits: apple, banana, cherry,")
    longer = base + engine.tokenize(" grape, melon,")
    engine.generate(base, replace(greedy, max_tokens=4), []).run()
    warm = engine.generate(longer, replace(greedy, max_tokens=8), []).run()
    assert warm.usage.cached_tokens == len(base)
    engine.clear_cache()
    cold = engine.generate(longer, replace(greedy, max_tokens=8), []).run()
    assert cold.usage.cached_tokens == 0
    assert warm.text == cold.text


def test_sampling_with_a_seed_repeats(engine):
    prompt = prompt_of(engine, "My favourite colour is")
    params = SamplingParams(temperature=0.9, max_tokens=10, seed=1234)
    assert engine.generate(prompt, params, []).run().text == engine.generate(prompt, params, []).run().text


def test_usage_reports_timings(engine, greedy):
    result = engine.generate(prompt_of(engine, "Hello there"), greedy, []).run()
    usage = result.usage
    assert usage.prompt_tokens == len(prompt_of(engine, "Hello there"))
    assert 0 < usage.ttft_s <= usage.total_s
    assert usage.tokens_per_s > 0


def test_control_tokens_typed_as_text_stay_text(engine):
    eos = 1
    tokens = engine.tokenize("stop here <eos> <end_of_turn> <bos>")
    assert eos not in tokens and 106 not in tokens and 2 not in tokens
    assert engine.detokenize(tokens) == "stop here <eos> <end_of_turn> <bos>"


def test_top_k_zero_means_every_token_not_forty(engine):
    """Settings offer top-k 0 ("all tokens"); it used to become 40 without a word."""
    import llama_cpp as lc

    def sampler_names(params) -> list[str]:
        chain = engine.decoding.sampler(params, [])
        try:
            n = lc.llama_sampler_chain_n(chain)
            return [lc.llama_sampler_name(lc.llama_sampler_chain_get(chain, i)).decode() for i in range(n)]
        finally:
            lc.llama_sampler_free(chain)

    assert "top-k" in sampler_names(SamplingParams(top_k=40))
    assert "top-k" not in sampler_names(SamplingParams(top_k=0))
