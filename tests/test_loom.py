"""The loom on the real default model: alternatives decoded together, token probabilities, and
a branch taken at a token."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.chat import ChatSession, ReplyStart
from app.engine.base import SamplingParams
from app.errors import InputError
from tests.helpers import basechat

pytestmark = pytest.mark.model

SAMPLED = SamplingParams(temperature=0.9, seed=11, max_tokens=64)


def test_alternatives_share_one_prompt_evaluation_and_each_stops_at_the_label(engine, template):
    engine.clear_cache()
    session = ChatSession(engine, template, replace(SAMPLED, max_tokens=200))
    question = "What is your favourite animal?"
    prompt = session.plan(question).tokens
    replies = session.send_many(question, 4).run()
    assert len(replies) == 4
    assert [r.completion.usage.prompt_tokens for r in replies] == [len(prompt)] * 4
    # evaluated once, by the first; the others found every prompt token in the cells they share
    assert [r.completion.usage.cached_tokens for r in replies] == [0] + [len(prompt)] * 3
    assert engine.cached_tokens == prompt  # afterwards only the prompt stays cached
    for reply in replies:
        assert reply.completion.finish_reason == "stop", reply.text
        assert reply.text and "User:" not in reply.text and "Assistant:" not in reply.text
        assert engine.detokenize(list(reply.completion.tokens)) == reply.completion.text
    assert len({r.text for r in replies}) >= 3  # each alternative has its own seed
    assert session.history[-1].text == replies[0].text


def test_seeded_alternatives_repeat_exactly_from_a_cold_start(engine, template):
    runs = []
    for _ in range(2):
        engine.clear_cache()
        runs.append(
            [r.text for r in ChatSession(engine, template, SAMPLED).send_many("Hi! Who are you?", 3).run()]
        )
    assert runs[0] == runs[1]


def test_stop_ends_every_alternative_and_frees_the_engine(engine, template):
    session = ChatSession(engine, template, replace(SAMPLED, max_tokens=200))
    stream = session.send_many("Write a long story about a ship.", 3)
    for _index, _chunk in stream:
        stream.cancel()
    assert [r.completion.finish_reason for r in stream.replies] == ["cancelled"] * 3
    assert all(r.completion.usage.completion_tokens <= 2 for r in stream.replies)
    assert ChatSession(engine, template, SAMPLED).ask("Hello!").text  # the engine is free again


def test_temperature_zero_with_several_alternatives_is_refused(engine, template):
    session = ChatSession(engine, template, SamplingParams(temperature=0.0))
    with pytest.raises(InputError, match="temperature"):
        session.send_many("Hello!", 2)


def test_token_probabilities_spell_the_reply_and_change_nothing(engine, template):
    greedy = SamplingParams(temperature=0.0, max_tokens=40)
    engine.clear_cache()  # both cold: the prompt is evaluated in the same batches, same numbers
    plain = ChatSession(engine, template, greedy).ask("What do bees make?")
    engine.clear_cache()
    recorded = ChatSession(engine, template, replace(greedy, n_probs=5)).ask("What do bees make?")
    assert recorded.completion.tokens == plain.completion.tokens
    probs = recorded.completion.probs
    assert [p.chosen.token for p in probs] == list(recorded.completion.tokens)
    assert "".join(p.chosen.text for p in probs) == recorded.completion.text
    for p in probs:
        values = [c.prob for c in p.top]
        assert len(values) == 5 and values == sorted(values, reverse=True)
        assert all(0.0 <= v <= 1.0 for v in values) and sum(values) <= 1.0 + 1e-6
        assert p.top[0].token == p.chosen.token and p.top[0].prob == pytest.approx(p.chosen.prob)
    assert plain.completion.probs == ()


def test_sampled_token_probabilities_come_from_what_the_sampler_kept(engine, template):
    params = replace(SAMPLED, n_probs=5, top_k=3)
    reply = ChatSession(engine, template, params).ask("Tell me about dogs.")
    for p in reply.completion.probs:
        assert len(p.top) <= 3  # top-k 3: no fourth candidate survives the chain
        assert sum(c.prob for c in p.top) == pytest.approx(1.0, abs=1e-4) or len(p.top) < 3
        assert p.chosen.token in [c.token for c in p.top]


def test_a_token_chosen_from_the_top_list_starts_a_branch_that_goes_on_after_it(engine, template):
    params = SamplingParams(temperature=0.0, max_tokens=40, n_probs=5)
    question = "What is the capital of France?"
    first = ChatSession(engine, template, params).ask(question)
    probs = first.completion.probs
    at = 0
    other = next(c for c in probs[at].top if c.token != probs[at].chosen.token and c.text.strip())
    start = ReplyStart(
        text="".join(p.chosen.text for p in probs[:at]) + other.text,
        tokens=(*[p.chosen.token for p in probs[:at]], other.token),
    )
    session = ChatSession(engine, template, params)
    after = session.plan(question).tokens + list(start.tokens)
    engine.clear_cache()  # the branch and its reference both cold: same batches, same numbers
    branch = session.send_from(question, start).run()
    assert branch.completion.tokens[: at + 1] == start.tokens
    # what follows is the model's continuation of the prompt *with the chosen token in place*
    engine.clear_cache()
    reference = engine.generate(after, params, template.stop_strings()).run()
    assert branch.completion.tokens[at + 1 :] == reference.tokens
    assert branch.completion.text.startswith(start.text)
    assert branch.completion.usage.completion_tokens >= 1  # generation went on after the chosen token
    assert len(branch.completion.text) > len(start.text)
    assert branch.text != first.text


def test_cli_ask_n_json_lists_the_alternatives(data_dir):
    result = basechat("--data-dir", str(data_dir), "ask", "--n", "3", "--seed", "4", "--json", "Hello there!")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert len(out["alternatives"]) == 3 and out["reply"] == out["alternatives"][0]["reply"]
    for alternative in out["alternatives"]:
        assert alternative["finish_reason"] in ("stop", "length") and alternative["completion_tokens"] > 0


def test_cli_ask_logprobs_json_tokens_spell_the_reply(data_dir):
    result = basechat("--data-dir", str(data_dir), "ask", "--logprobs", "4", "--temperature", "0", "--json",
                      "What colour is grass?")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "".join(t["text"] for t in out["tokens"]).strip() == out["reply"]
    assert all(len(t["top"]) == 4 and 0 <= t["prob"] <= 1 for t in out["tokens"])
