"""Speculative decoding with the real default model: prompt lookup and a draft model (the default
model drafting for itself), checked against the same model without drafting.

Greedy replies with and without drafting agree token for token except where llama.cpp's CPU
kernels round a batch of tokens differently from one token (measured here: logits differ by up
to 1.4 between a 10-token batch and ten single steps). So each comparison accepts a difference
only at a near tie: at the first token where the two replies part, the plain model itself must
rate the drafted reply's token within ``TIE`` (in log-probability) of its own pick. A drafting
bug (a wrong position, a wrong logits row, a stale cell) picks tokens far from the model's pick.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace

import llama_cpp as lc
import pytest

from app.engine.base import SamplingParams
from app.engine.drafting import DraftPolicy, LookupDrafter
from app.errors import ModelLoadError

pytestmark = pytest.mark.model

TIE = 2.5  # log-probability: well above the rounding differences measured, far below a wrong pick
GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0, max_tokens=90)
PARAGRAPH = (
    "The old lighthouse stood at the edge of the cliff for two hundred years. Every night its keeper "
    "climbed the narrow stairs, trimmed the wick and watched the lamp turn over the dark water."
)
COPY = f"Original:\n{PARAGRAPH}\n\nThe same paragraph, copied exactly:\n"
LIST = "Schedule\n" + "".join(f"Day {n}: water the plants and feed the cat.\n" for n in (1, 2)) + "Day 3:"


def prompt_of(engine, text: str) -> list[int]:
    return engine.start_tokens() + engine.tokenize(text)


def reply(engine, text: str, draft: str, params=GREEDY, stop=(), always=True):
    engine.use_draft(draft, always=always)
    try:
        engine.clear_cache()
        return engine.generate(prompt_of(engine, text), params, list(stop)).run()
    finally:
        engine.use_draft("off")


def assert_same_or_near_tie(engine, text: str, plain, drafted) -> None:
    """Equal, or parted at a token the plain model rates within TIE of its own pick."""
    a, b = list(plain.tokens), list(drafted.tokens)
    if a == b:
        return
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    assert at < len(a) and at < len(b), f"one reply stopped early: {plain.text!r} / {drafted.text!r}"
    engine.use_draft("off")
    engine.clear_cache()
    step = replace(GREEDY, max_tokens=1, n_probs=20, top_k=20)
    probe = engine.generate(prompt_of(engine, text) + a[:at], step, []).run()
    rated = {c.token: c.prob for c in probe.probs[0].top}
    assert probe.tokens[0] == a[at], "the plain model no longer picks its own token"
    assert b[at] in rated, f"drafting picked {engine.detokenize([b[at]])!r}, not among the model's top 20"
    gap = math.log(rated[a[at]]) - math.log(rated[b[at]])
    assert gap < TIE, f"parted at token {at} by {gap:.2f} in log-probability: not a rounding tie"


@pytest.mark.parametrize("text", [COPY, LIST])
def test_prompt_lookup_drafts_copied_text_and_keeps_the_models_own_picks(engine, text):
    plain = reply(engine, text, "off")
    drafted = reply(engine, text, "lookup")
    assert drafted.usage.drafted_tokens >= 20 and drafted.usage.acceptance > 0.5
    assert drafted.usage.completion_tokens == plain.usage.completion_tokens == GREEDY.max_tokens
    assert_same_or_near_tie(engine, text, plain, drafted)
    assert engine.detokenize(list(drafted.tokens)) == drafted.text


def test_the_model_drafting_for_itself_is_accepted_almost_whole(engine, model_path):
    """The whole draft-model path (a second context, its own cache kept in step) with the
    acceptance ceiling: the same weights guess what the target picks."""
    plain = reply(engine, COPY, "off")
    drafted = reply(engine, COPY, str(model_path))
    assert drafted.usage.drafted_tokens >= 40
    assert drafted.usage.acceptance >= 0.8
    assert_same_or_near_tie(engine, COPY, plain, drafted)


def test_a_draft_model_of_another_vocabulary_is_refused_in_one_line(engine, smollm2_path):
    with pytest.raises(ModelLoadError) as refused:
        engine.use_draft(str(smollm2_path))
    message = str(refused.value)
    assert "\n" not in message and "cannot draft for" in message
    assert "BPE, 49,152 tokens" in message and "SentencePiece, 262,144 tokens" in message
    assert engine.draft_mode == "off"
    assert engine.generate(prompt_of(engine, "Hello"), replace(GREEDY, max_tokens=3), []).run().text


def test_drafted_replies_end_at_stops_and_limits_exactly_as_plain_ones(engine):
    stop = ["Day 6"]
    plain = reply(engine, LIST, "off", stop=stop)
    drafted = reply(engine, LIST, "lookup", stop=stop)
    assert plain.finish_reason == drafted.finish_reason == "stop"
    assert drafted.text == plain.text and "Day 5" in drafted.text and "Day 6" not in drafted.text
    for limit in (1, 2, 7, 33):
        capped = reply(engine, LIST, "lookup", params=replace(GREEDY, max_tokens=limit))
        assert capped.usage.completion_tokens == limit and capped.finish_reason == "length"


def test_drafted_tokens_carry_the_targets_probabilities(engine):
    drafted = reply(engine, COPY, "lookup", params=replace(GREEDY, n_probs=3))
    assert drafted.usage.accepted_tokens > 10
    assert len(drafted.probs) == len(drafted.tokens)
    for entry in drafted.probs:
        assert entry.top and entry.chosen.token == entry.top[0].token  # greedy: the likeliest
        assert 0 < entry.chosen.prob <= 1


def test_after_a_drafted_reply_the_cache_holds_exactly_the_tokens_it_lists(engine):
    """Rejected drafts leave no cells behind: the next turn reuses what is listed, nothing more.
    Two texts, so that some draft is cut whatever this machine's greedy reply is (a copied
    paragraph was once copied whole, every draft taken, on a run under load)."""
    engine.use_draft("lookup", always=True)
    try:
        cut = [_cache_matches_the_reply(engine, prompt_of(engine, text)) for text in (COPY, LIST)]
        assert any(cut)  # some draft was cut, in one of the two replies at least
    finally:
        engine.use_draft("off")


def _cache_matches_the_reply(engine, prompt: list[int]) -> bool:
    """The cache after a drafted reply is its prompt and tokens, and a follow-up reuses it as a
    cold evaluation would; returns whether any draft of the reply was cut."""
    engine.clear_cache()
    result = engine.generate(prompt, replace(GREEDY, max_tokens=90), []).run()
    cached = engine.cached_tokens
    assert cached == (prompt + list(result.tokens))[: len(cached)]
    assert lc.llama_memory_seq_pos_max(engine.decoding.memory, 0) + 1 == len(cached)
    follow = prompt + list(result.tokens) + engine.tokenize("\n\nOnce more:\n")
    warm = engine.generate(follow, replace(GREEDY, max_tokens=12), []).run()
    engine.clear_cache()
    cold = engine.generate(follow, replace(GREEDY, max_tokens=12), []).run()
    assert warm.usage.cached_tokens > len(prompt)
    assert warm.text == cold.text
    return result.usage.drafted_tokens > result.usage.accepted_tokens


def test_the_sampling_chain_drafts_too(engine):
    """The app's sampler chain (penalty, top-p, min-p, temperature, a seeded draw) verifies drafts
    as it samples: with top-k 1 the draw is forced, so what it writes is known whatever the seed."""
    params = replace(SamplingParams(), top_k=1, seed=7, max_tokens=60, ignore_eos=True)
    plain = reply(engine, LIST, "off", params=params)
    drafted = reply(engine, LIST, "lookup", params=params)
    assert drafted.usage.completion_tokens == 60 and drafted.usage.accepted_tokens > 10
    assert_same_or_near_tie(engine, LIST, plain, drafted)
    assert engine.detokenize(list(drafted.tokens)) == drafted.text


def test_cancel_stops_a_drafted_reply(engine):
    engine.use_draft("lookup", always=True)
    try:
        generation = engine.generate(prompt_of(engine, LIST), replace(GREEDY, max_tokens=200), [])
        for seen, _chunk in enumerate(generation, 1):
            if seen == 3:
                threading.Thread(target=generation.cancel).start()
        assert generation.result.finish_reason == "cancelled"
        assert generation.result.usage.completion_tokens < 200
    finally:
        engine.use_draft("off")


def test_lookup_proposes_what_followed_the_latest_earlier_occurrence():
    drafter = LookupDrafter()
    history = [5, 6, 7, 8, 1, 2, 3, 9, 9, 5, 6, 7, 8, 4, 4, 5, 6, 7, 8]
    assert drafter.propose(history[:-1], history[-1], 3) == [4, 4, 5]  # the latest 5 6 7 8 before the end
    longer = [*history, 4, 4, 5]
    assert drafter.propose(longer[:-1], longer[-1], 2) == [6, 7]  # the index grew with the history
    assert LookupDrafter().propose([1, 2, 3, 4], 5, 4) == []  # nothing seen twice


def test_the_policy_drafts_only_while_drafts_pay():
    policy = DraftPolicy()
    assert policy.length(10) == 0  # nothing known about this machine yet
    policy.plain_step(0.010)
    assert policy.length(10) > 2  # hopeful at first
    for _ in range(6):
        policy.checked(drafted=4, accepted=0, seconds=0.025)
    assert policy.length(10) == 0  # every draft missed: a batch costs more than it gives
    for _ in range(400):
        policy.plain_step(0.010)
    assert policy.length(10) > 0  # a while later it tries again
    for _ in range(6):
        policy.checked(drafted=8, accepted=8, seconds=0.035)
    assert policy.length(16) == 16


def test_the_command_line_drafts_by_default_and_refuses_a_foreign_draft_in_one_line(smollm2_path):
    from tests.helpers import assert_one_line_error, basechat

    refused = basechat("ask", "--draft", str(smollm2_path), "Hello")
    assert_one_line_error(refused, "cannot draft for")
    text = "Copy exactly: red, green, blue, red, green, blue, red, green, blue, red, green, blue"
    done = basechat("ask", "--raw", "--json", "--temperature", "0", "--max-tokens", "40", text)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["drafted_tokens"] > 0  # the default: lookup
    off = basechat(
        "ask", "--raw", "--json", "--temperature", "0", "--max-tokens", "40", "--draft", "off", text
    )
    assert json.loads(off.stdout)["drafted_tokens"] == 0
