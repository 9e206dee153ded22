"""The samplers made for chatting with base models (issue 24), with the real default model: DRY
ends loops, a repetition penalty over the reply only leaves the user's words alone, presets, and
the same settings sent to llama-server."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.engine.base import SamplingParams
from app.engine.presets import PRESETS, preset_of, preset_params
from app.measure.evaluate import loops
from tests.helpers import basechat

pytestmark = pytest.mark.model

LIST = "Schedule\n" + "".join(f"Day {n}: water the plants and feed the cat.\n" for n in (1, 2, 3)) + "Day 4:"
GREEDY = SamplingParams(
    temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0, max_tokens=120, ignore_eos=True
)


def run(engine, text: str, params: SamplingParams):
    engine.clear_cache()
    return engine.generate(engine.start_tokens() + engine.tokenize(text), params, []).run()


def test_dry_breaks_a_reply_that_copies_itself(engine):
    """Greedy with no penalty copies the line to the limit; under DRY a copy costs more the longer
    it runs (0.8 x 1.75 ** (length - 2) in logits), so no line is copied whole again."""
    line = "water the plants and feed the cat."
    plain = run(engine, LIST, GREEDY)
    assert loops(plain.tokens, plain.finish_reason) and plain.text.count(line) >= 5
    dry = run(engine, LIST, replace(GREEDY, dry_multiplier=0.8, penalize_prompt=True))
    assert dry.text.count(line) == 0, dry.text
    own = run(engine, LIST, replace(GREEDY, dry_multiplier=0.8, penalize_prompt=False))
    assert own.text.count(line) <= 1, own.text  # over the reply only: it may copy the prompt once


def test_a_penalty_over_the_reply_only_leaves_the_users_name_alone(engine):
    """The same penalty, over the prompt and over the reply only: the name the user gave is less
    likely when the penalty sees the prompt, as likely as unpenalised when it does not."""
    text = "User: Hello! My name is Anna.\nAssistant: Nice to meet you.\n"
    text += "User: What is my name?\nAssistant: Your name is"
    step = replace(GREEDY, max_tokens=1, n_probs=10, top_k=40)
    anna = engine.tokenize(" Anna")[0]

    def chance(**change) -> float:
        top = run(engine, text, replace(step, **change)).probs[0].top
        return next((c.prob for c in top if c.token == anna), 0.0)

    free = chance()
    assert free > 0.3  # the model knows the name
    assert chance(repeat_penalty=1.5, penalize_prompt=True) < free * 0.8
    assert chance(repeat_penalty=1.5, penalize_prompt=False) == pytest.approx(free, rel=0.01)


def test_presets_are_starting_points_the_flags_go_on_top_of():
    assert preset_of(preset_params("creative")) == "creative"
    assert preset_of(SamplingParams()) == "precise"  # new chats start from it
    assert preset_of(SamplingParams(temperature=0.9)) == ""
    for name in PRESETS:
        assert preset_params(name).dry_multiplier > 0  # every preset guards against loops
    result = basechat("ask", "--json", "--preset", "precise", "--top-k", "7", "--max-tokens", "4", "Hi")
    assert result.returncode == 0, result.stderr
    sampling = json.loads(result.stdout)["sampling"]
    assert sampling["temperature"] == PRESETS["precise"]["temperature"] and sampling["top_k"] == 7
    assert sampling["dry_multiplier"] == PRESETS["precise"]["dry_multiplier"]


def test_the_reply_only_penalty_and_dry_reach_the_command_line():
    result = basechat("ask", "--json", "--penalty-scope", "reply", "--dry-multiplier", "1.2",
                      "--xtc-probability", "0.3", "--max-tokens", "4", "Hi")  # fmt: skip
    sampling = json.loads(result.stdout)["sampling"]
    assert sampling["penalize_prompt"] is False and sampling["dry_multiplier"] == 1.2
    assert sampling["xtc_probability"] == 0.3
