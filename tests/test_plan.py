"""The message plan (app/scaffold/plan.py): every step acts when it should and says why, stands
aside when it should not, and is switched off by name in the frame — each on and off. Pure
Python, the real default frame."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.scaffold import load_template, render_prompt, template_from_dict
from app.scaffold.plan import STEP_NAMES, Asked, fit_draws, plan_message
from app.scaffold.template import template_to_dict

STORY = "Tell me a story about a lighthouse keeper."
EARLIER = ("My dog is called Biscuit.", "What is the capital of France?")
# For each step: a message (with earlier ones) it acts on, and how to see that it did.
ACTING = {
    "request_note": (STORY, (), lambda plan: any("story" in note for note in plan.notes)),
    "min_length": (STORY, (), lambda plan: plan.min_tokens > 0),
    "recall": ("What is my dog called?", EARLIER, lambda plan: any("Biscuit" in n for n in plan.notes)),
    "favour": ("What is my dog called?", EARLIER, lambda plan: "Biscuit" in plan.favour),
    "followup": ("And Spain?", EARLIER, lambda plan: any("capital of Spain" in n for n in plan.notes)),
    "best_of": ("What is the capital of Italy?", (), lambda plan: plan.draws == 4),
    "echo_guard": ("What should we talk about?", (), lambda plan: "what should we talk about" in plan.avoid),
    "note_stops": ("Hello!", (), lambda plan: "\n(The Assistant" in plan.stops),
}


@pytest.fixture(scope="module")
def chat():
    return load_template("chat")


def asked(template, text: str, earlier: tuple[str, ...]) -> Asked:
    return Asked(template, text, earlier, best_of=4, sampled=True, can_rank=True)


def test_every_step_has_a_case_here():
    assert set(ACTING) == set(STEP_NAMES)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_a_step_acts_and_says_so_when_on(chat, step):
    text, earlier, acted = ACTING[step]
    plan = plan_message(asked(chat, text, earlier))
    assert acted(plan)
    assert any(a.step == step and a.what and a.why for a in plan.acted)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_a_step_switched_off_in_the_frame_does_nothing(chat, step):
    text, earlier, acted = ACTING[step]
    plan = plan_message(asked(replace(chat, steps_off=(step,)), text, earlier))
    assert not acted(plan)
    assert all(a.step != step for a in plan.acted)


def test_a_plain_question_gets_no_notes_and_no_minimum(chat):
    plan = plan_message(asked(chat, "What is the capital of Italy?", ()))
    assert plan.notes == () and plan.min_tokens == 0 and plan.favour == ()


def test_best_of_stands_aside_for_a_long_reply_greedy_sampling_or_an_engine_that_cannot_rank(chat):
    assert plan_message(asked(chat, STORY, ())).draws == 1  # held to a minimum
    for change in ({"sampled": False}, {"can_rank": False}, {"held_open": True}, {"best_of": 1}):
        plan = plan_message(replace(asked(chat, "What is the capital of Italy?", ()), **change))
        assert plan.draws == 1, change


def test_draws_that_do_not_fit_are_cut_and_the_plan_says_why(chat):
    plan = fit_draws(plan_message(asked(chat, "What is the capital of Italy?", ())), 2)
    assert plan.draws == 2 and "fit" in plan.acted[-1].why


def test_steps_off_survive_the_frame_file_and_bad_values_are_one_clear_error(chat):
    frame = replace(chat, steps_off=("best_of", "recall"))
    assert template_from_dict(template_to_dict(frame)).steps_off == ("best_of", "recall")
    from app.errors import TemplateError

    with pytest.raises(TemplateError, match="steps_off"):
        template_from_dict(template_to_dict(chat) | {"steps_off": "best_of"})


def test_the_newest_message_renders_the_plans_notes_and_old_turns_keep_theirs(chat):
    """The transcript shows the notes the plan made (once) under the newest message; a frame with
    the request note switched off shows none, anywhere."""
    from app.scaffold import Message

    history = [Message("user", STORY), Message("assistant", "Once upon a time…")]
    shown = render_prompt(chat, history, "Write a poem about rain.")
    assert "(The Assistant tells the whole story" in shown and "(The Assistant writes the whole poem" in shown
    quiet = render_prompt(replace(chat, steps_off=("request_note",)), history, "Write a poem about rain.")
    assert "(The Assistant tells the whole story" not in quiet and "whole poem" not in quiet


@pytest.mark.model
def test_basechat_prompt_lists_the_plan(data_dir):
    import json

    from tests.helpers import basechat

    result = basechat("--data-dir", str(data_dir), "prompt", "--json", STORY)
    plan = json.loads(result.stdout)["plan"]
    assert any(line.startswith("min_length: minimum 120 tokens") for line in plan), plan


@pytest.mark.parametrize(
    "request_text",
    ["Write one line of Python that prints hello.", "Write a haiku about autumn.",
     "List three primary colours.", "Explain gravity in one sentence.",
     "Tell me a two-sentence story about a cat."],
)  # fmt: skip
def test_a_request_that_names_its_small_size_is_not_held_open(chat, request_text):
    """The default frame's first note: a short form asked for gets the note that says so, and no
    minimum length (the story, list, code and explanation notes would hold it to 120 tokens)."""
    plan = plan_message(asked(chat, request_text, ()))
    assert plan.min_tokens == 0 and any("exactly the form asked for" in note for note in plan.notes)


def test_a_long_request_keeps_its_minimum(chat):
    for request_text in (
        STORY,
        "Explain in detail how a car engine works.",
        "List ten fruits and say something about each.",
    ):
        assert plan_message(asked(chat, request_text, ())).min_tokens == 120, request_text
