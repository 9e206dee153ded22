"""`basechat eval` on a slice of the shipped question set, with the real default model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.errors import InputError
from app.measure.evaluate import load_items, markdown_table, run_eval
from tests.conftest import ROOT
from tests.helpers import assert_one_line_error, basechat

DATA = ROOT / "tests" / "data"
KEYS = {
    "template", "n", "answered", "answered_rate", "turn_stop_rate", "leak_rate", "empty_rate",
    "mean_completion_tokens", "memory_n", "memory_recalled", "memory_recall_rate", "wall_s",
    "parrot_n", "parrot_rate", "long_form_n", "long_form_median_tokens", "long_form_turn_stop_rate",
    "follow_up_n", "follow_up_rate", "loop_rate", "short_form_n", "short_form_median_ratio",
    "short_form_within_2x_rate", "short_form_turn_stop_rate", "talk_n", "talk_echo_rate",
    "overflow_n", "overflow_recall_rate",
}  # fmt: skip


def test_question_sets_are_large_enough_and_well_formed():
    qa = load_items([DATA / "qa.jsonl"])
    memory = load_items([DATA / "memory.jsonl"])
    assert len(qa) >= 60 and not any(item.setup for item in qa)
    assert all(item.setup for item in memory)
    overflow = load_items([DATA / "overflow.jsonl"])
    assert all(item.kind == "overflow" and item.setup for item in overflow)
    for items in (memory, overflow):  # one item moves a half's figure by 0.03 at most
        assert min(sum(i.half == half for i in items) for half in ("tune", "held")) >= 34


@pytest.mark.model
def test_scaffold_beats_the_raw_model_on_a_slice(engine, template):
    items = load_items([DATA / "qa.jsonl"])[:8] + load_items([DATA / "memory.jsonl"])[:2]
    ticks = []
    scaffolded = run_eval(engine, template, items, progress=lambda: ticks.append(1)).summary()
    raw = run_eval(engine, None, items).summary()
    assert len(ticks) == len(items)
    assert set(scaffolded) == KEYS and set(raw) == KEYS
    assert scaffolded["n"] == 8 and scaffolded["memory_n"] == 2
    assert scaffolded["turn_stop_rate"] == 1.0
    assert scaffolded["leak_rate"] == 0.0 and scaffolded["empty_rate"] == 0.0
    assert scaffolded["answered_rate"] > raw["answered_rate"]
    table = markdown_table([scaffolded, raw])
    assert table.count("\n") == 3 and "| chat |" in table and "| raw |" in table


@pytest.mark.model
def test_eval_command_prints_json(tmp_path, model_path):
    slice_file = tmp_path / "slice.jsonl"
    lines = (DATA / "qa.jsonl").read_text().splitlines()[:3]
    slice_file.write_text("\n".join(lines) + "\n")
    result = basechat("eval", str(slice_file), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == KEYS | {"sampling"} and data["n"] == 3 and data["template"] == "chat"
    assert data["sampling"] == "greedy"


@pytest.mark.model
def test_eval_of_the_app_as_shipped_reports_each_figure_over_seeds(tmp_path, model_path):
    slice_file = tmp_path / "slice.jsonl"
    slice_file.write_text("\n".join((DATA / "qa.jsonl").read_text().splitlines()[:3]) + "\n")
    replies = tmp_path / "replies.jsonl"
    result = basechat("eval", str(slice_file), "--sampling", "app", "--seeds", "2", "--max-tokens", "12",
                      "--json", "--replies", str(replies))  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sampling"] == "app" and data["n"] == 3
    for key in ("answered_rate", "turn_stop_rate", "memory_recall_rate", "loop_rate"):
        assert data[f"{key}_min"] <= data[key] <= data[f"{key}_max"]
    assert len(replies.read_text().splitlines()) == 2 * 3  # both seeds ran every item


def test_eval_app_sampling_is_what_a_new_window_chat_samples_with(tmp_path):
    """Change a default in one place (SamplingParams, the window's own defaults) and this follows."""
    from dataclasses import replace

    from PySide6.QtCore import QSettings

    from app.cli.measure import eval_sampling
    from app.cli.parser import build_parser
    from app.ui.settings import load_sampling

    args = build_parser().parse_args(["eval", "x.jsonl", "--sampling", "app"])
    window = load_sampling(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    assert eval_sampling(args) == replace(window, n_probs=0)  # probabilities are shown, not sampled
    greedy = eval_sampling(build_parser().parse_args(["eval", "x.jsonl"]))
    assert greedy.temperature == 0 and greedy.repeat_penalty == 1.0


@pytest.mark.model
def test_eval_measures_without_drafting_so_sampled_runs_repeat(engine):
    """A draft's batch sizes follow the clock and batched logits differ in the last bits, so with
    drafting two sampled runs of one configuration differed (follow-up 0.20 against 0.47)."""
    from app.cli.common import with_draft
    from app.cli.parser import build_parser

    before = engine.draft_mode
    engine.use_draft("lookup")
    try:
        assert with_draft(engine, build_parser().parse_args(["eval", "x.jsonl"])).draft_mode == "off"
        assert with_draft(engine, build_parser().parse_args(["ask", "hi"])).draft_mode == "lookup"
    finally:
        engine.use_draft(before)


def test_a_loop_is_a_run_of_tokens_repeated_three_times():
    from app.measure.evaluate import loops

    assert loops([1, 2, 3, 4, 9, 1, 2, 3, 4, 8, 1, 2, 3, 4])
    assert not loops([1, 2, 3, 4, 9, 1, 2, 3, 4, 8, 7, 6, 5])  # twice is not a loop
    assert not loops(list(range(200)))
    assert loops([5, 6, 7, 8, 1, 5, 6, 7, 8], "length")  # cut by the limit while repeating
    assert not loops([5, 6, 7, 8, 1, 5, 6, 7, 8], "stop")


def test_malformed_question_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Hi?", "answer_pattern": "("}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:1"):
        load_items([bad])
    bad.write_text('{"question": "Hi?"}\n')
    with pytest.raises(InputError, match="answer_pattern"):
        load_items([bad])
    with pytest.raises(InputError, match="Cannot read"):
        load_items([Path(tmp_path / "missing.jsonl")])
    for form in ('"form_tokens": 0', '"form_tokens": "ten"', '"form_tokens": true', '"x": 1'):
        bad.write_text(f'{{"kind": "short", "question": "A haiku?", {form}}}\n')
        with pytest.raises(InputError, match="form_tokens"):
            load_items([bad])


def test_short_forms_are_measured_against_what_the_form_needs():
    """The short-form figures: the median of reply tokens over the form's, and how many are within
    twice it (no filler after the form)."""
    from app.measure.evaluate import EvalItem, EvalReport, Outcome

    def outcome(tokens: int, form: int) -> Outcome:
        item = EvalItem("A haiku?", None, kind="short", form_tokens=form)
        return Outcome(item, "x", False, True, False, tokens)

    report = EvalReport("chat", [outcome(10, 10), outcome(50, 10), outcome(15, 10)])
    figures = report.summary()
    assert figures["short_form_n"] == 3 and figures["short_form_median_ratio"] == 1.5
    assert figures["short_form_within_2x_rate"] == round(2 / 3, 4)


@pytest.mark.model
def test_eval_command_bad_file_is_one_line(tmp_path, model_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert_one_line_error(basechat("eval", str(bad)), "bad.jsonl:1")


def test_parroting_is_counted_only_for_example_content_the_chat_never_mentioned():
    from app.measure.evaluate import example_phrases, example_terms, parrots
    from app.scaffold import template_from_dict

    old_chat = template_from_dict(
        {
            "preamble": "A chat.",
            "examples": [
                {"user": "Hi, I'm Maria.", "assistant": "Hello, Maria! Nice to meet you."},
                {"user": "What is the tallest mountain?", "assistant": "Mount Everest, at 8,849 metres."},
            ],
        }
    )  # fmt: skip  (the frame before round two, which parroted "Maria")
    terms = example_terms(old_chat)
    assert {"Maria", "Everest", "8,849"} <= terms
    assert parrots("Your name is Maria.", "What is my name?", terms)
    assert parrots("It is 8,849 metres tall.", "How tall is Mount Fuji?", terms)
    assert not parrots("I don't know your name yet.", "What is my name?", terms)
    assert not parrots("Hello, Maria!", "Hi, I'm Maria.", terms)  # she said it: not parroting
    story = template_from_dict({"preamble": "A chat.", "examples": [
        {"user": "A story?", "assistant": "It was dark.\n\nShe ran home to Lisbon.\n- Then she slept."},
    ]})  # fmt: skip
    assert example_terms(story) == {"Lisbon"}  # paragraph and list openers are not names
    tea = template_from_dict({"preamble": "A chat.", "examples": [
        {"user": "How do I make tea?", "assistant": "- Boil fresh water in a kettle.\n- Add the tea."},
    ]})  # fmt: skip
    copied = "Here is how to bake bread:\n- Boil fresh water in a kettle."
    assert parrots(copied, "How do I bake bread?", set(), example_phrases(tea))
    assert not parrots("Boil the water, then add flour.", "How do I bake bread?", set(), example_phrases(tea))
    assert not parrots(copied, "Should I boil fresh water in a kettle?", set(), example_phrases(tea))


@pytest.mark.model
def test_round_two_measures_on_the_real_model(engine, tmp_path):
    from app.scaffold import load_template

    data = ROOT / "tests" / "data"
    long, follow, probes = (
        load_items([data / name]) for name in ("longform.jsonl", "followup.jsonl", "probes.jsonl")
    )
    items = long[:2] + follow[:2] + probes[6:7]  # "What is my name?" with no name given
    summary = run_eval(engine, load_template("chat"), items, 64).summary()
    assert summary["long_form_n"] == 2 and summary["long_form_median_tokens"] > 0
    assert summary["follow_up_n"] == 2 and 0 <= summary["follow_up_rate"] <= 1
    assert summary["parrot_n"] == 5 and 0 <= summary["parrot_rate"] <= 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "chitchat", "question": "hi"}\n')
    with pytest.raises(InputError, match="kind must be one of"):
        load_items([bad])


def _content_words(text: str) -> set[str]:
    common = {"what", "which", "does", "have", "many", "with", "there", "your", "about", "tell"}
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3 and w not in common}


def test_the_default_frame_asks_nothing_the_eval_sets_ask():
    """An example that asks an eval question hands the model its answer and flatters the figure
    (round two first used three such examples; the held half caught them). Long-form requests
    share their form on purpose ("Write a long story about…"), so only facts are compared."""
    from app.scaffold import load_template

    items = load_items(sorted(DATA.glob("*.jsonl")))
    questions = [i.question for i in items if i.kind != "long"] + [s for i in items for s in i.setup]
    for example in load_template("chat").examples:
        mine = _content_words(example.user)
        for question in questions:
            shared = mine & _content_words(question)
            assert not mine or len(shared) / len(mine) < 0.6, (example.user, question)


def test_an_echo_or_an_example_line_is_counted():
    from app.measure.evaluate import echoes
    from app.scaffold import load_template

    chat = load_template("chat")
    line = chat.examples[0].user
    assert echoes("What should we talk about?", "what should we talk about", chat)
    assert echoes(f"{line}\nAnd more.", "yo", chat)  # a line of the frame's examples
    assert not echoes("Anything you like! Music, films or the weather.", "What should we talk about?", chat)
