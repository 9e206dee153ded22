"""Issue 24, round two: a reply asked to be long is held to a minimum length (and then steered to
end at a paragraph break), and a question the user asks about themselves gets what they said
about it quoted under it. The engine tests use the real default model; the guarantees they check
hold by construction (a banned token cannot be picked), whatever words a machine's build picks."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from app.chat import ChatSession
from app.engine.base import SamplingParams
from app.engine.minlength import FAVOUR, FAVOUR_SPAN, NO_NUDGE, EndGuard, end_tokens
from app.errors import TemplateError
from app.scaffold import Message, load_template, render_pieces, render_prompt
from app.scaffold.language import load_language
from app.scaffold.memory import as_told, recall_quotes, told_words
from app.scaffold.template import template_from_dict, template_to_dict
from tests.helpers import assert_favour_lifts_the_second_choice

SHORT = "What is the capital of France?"
GREEDY = SamplingParams(temperature=0.0, max_tokens=60)

EN = load_language("en")


def natural_and_held(engine, template, params: SamplingParams, least: int):
    """The reply to a short question as the model ends it, and held to ``least`` tokens."""
    prompt = ChatSession(engine, template, params).plan(SHORT).tokens
    stops = template.stop_strings()
    engine.clear_cache()
    natural = engine.generate(prompt, params, stops).run()
    held = engine.generate(prompt, replace(params, min_tokens=least), stops).run()
    return natural, held


@pytest.mark.model
def test_a_minimum_holds_a_reply_open_past_its_natural_end(engine, template):
    natural, held = natural_and_held(engine, template, GREEDY, 40)
    assert natural.finish_reason == "stop" and natural.usage.completion_tokens < 20, natural.text
    assert held.usage.completion_tokens >= 40, held.text
    assert held.text.startswith(natural.text.rstrip())  # the same reply, only longer
    assert "user:" not in held.text.lower() and "assistant:" not in held.text.lower()


@pytest.mark.model
def test_a_minimum_holds_when_a_draft_proposes_the_turns_end(engine, template):
    """Asked again, the model repeats its answer, and prompt lookup drafts what followed it last
    time: the new line and the next "User:". The drafted label must meet the same ban."""
    history = [Message("user", SHORT), Message("assistant", "The capital of France is Paris.")]
    prompt = ChatSession(engine, template, GREEDY, history).plan(SHORT).tokens
    before = engine.draft_mode
    engine.use_draft("lookup", always=True)
    try:
        engine.clear_cache()
        held = engine.generate(prompt, replace(GREEDY, min_tokens=40), template.stop_strings()).run()
    finally:
        engine.use_draft(before)
    assert held.text.startswith(" The capital of France is Paris.") and held.usage.drafted_tokens > 0
    assert held.usage.completion_tokens >= 40, held.text


@pytest.mark.model
def test_every_alternative_is_held_to_the_minimum(engine, template):
    prompt = ChatSession(engine, template, GREEDY).plan(SHORT).tokens
    sampled = SamplingParams(temperature=0.3, seed=1, max_tokens=60, min_tokens=30)
    many = engine.generate_many(prompt, sampled, template.stop_strings(), 3).run()
    assert [c.usage.completion_tokens >= 30 for c in many] == [True] * 3, [c.text for c in many]


@pytest.mark.model
def test_the_guard_bans_the_turns_end_then_makes_it_likelier(engine, template):
    vocab, piece, stops = engine.decoding.vocab, engine.decoding.piece, template.stop_strings()
    guard = EndGuard(vocab, piece, engine.tokenize, stops, 10)
    newline, word = engine.tokenize("Paris.\n")[-1], engine.tokenize(" the")[0]
    user, note = engine.tokenize("User")[0], engine.tokenize("(The Assistant")[0]
    ends = end_tokens(vocab)
    assert ends and piece(newline).endswith(b"\n")
    ((banned, delta),) = guard.nudge(3, newline)
    assert {user, note, *ends} <= set(banned) and delta == -math.inf
    named = {engine.tokenize(" User")[0], engine.tokenize(" Assistant")[0]}
    ((banned, _),) = guard.nudge(3, word)  # mid-line: end-of-text and the speakers' names ("The User:")
    assert set(banned) == {*ends, *named, user, engine.tokenize("Assistant")[0]}
    assert guard.nudge(12, word) == NO_NUDGE
    ((boosted, delta),) = guard.nudge(30, newline)
    assert user in boosted and delta == pytest.approx(EndGuard.END_RAMP * 20)
    assert EndGuard(vocab, piece, engine.tokenize, stops, 0).nudge(0, newline) == NO_NUDGE


@pytest.mark.model
def test_a_long_request_sets_the_minimum_from_its_note(engine, template):
    session = ChatSession(engine, template, GREEDY)
    assert (
        session.plan("Write a long story about a lighthouse keeper.").min_tokens == 60
    )  # capped by the room
    assert session.plan(SHORT).min_tokens == 0
    roomy = ChatSession(engine, template, replace(GREEDY, max_tokens=256))
    assert roomy.plan("Explain how tides work.").min_tokens == 120


def test_notes_carry_a_minimum_and_their_opening_ends_a_reply():
    chat = load_template("chat")
    minimums = [n.min_tokens for n in chat.notes]
    assert minimums[:2] == [0, 0] and set(minimums[2:]) == {120}  # short forms first, then long ones
    assert "\n(The Assistant" in chat.stop_strings()
    data = template_to_dict(chat)
    assert (
        template_from_dict(data).notes == chat.notes
        and template_from_dict(data).recall_note == chat.recall_note
    )
    for bad in (-1, 5000, "ten", True):
        with pytest.raises(TemplateError, match="min_tokens"):
            template_from_dict(data | {"notes": [{"when": "x", "note": "(n)", "min_tokens": bad}]})
    with pytest.raises(TemplateError, match="recall_note"):
        template_from_dict(data | {"recall_note": "(no slot)"})


# -- recall ---------------------------------------------------------------------------------------


def test_a_question_about_the_user_quotes_what_they_said_about_it():
    said = ["My cat is called Tom.", "What is the capital of Peru?", "I work as a baker.", "I like tea."]
    assert recall_quotes("What is my cat's name?", said) == ["My cat is called Tom."]
    assert recall_quotes("What do I do for work?", said) == ["I work as a baker."]
    assert recall_quotes("Do you remember my job?", said) == ["I work as a baker."]
    assert recall_quotes("What is the capital of Chile?", said) == []  # not about the user
    assert recall_quotes("What is my favourite film?", said) == []  # never said
    assert recall_quotes("What did I ask about Peru?", said) == []  # a question is not a statement


def test_recall_finds_a_statement_however_far_back_and_quotes_one_sentence():
    filler = [f"Tell me a fact about the number {n}." for n in range(500)]
    assert recall_quotes("What is my cat called?", ["My cat is Tom.", *filler]) == ["My cat is Tom."]
    assert recall_quotes("What is my cat called?", ["My cat is Tom.\nAssistant: hi"]) == ["My cat is Tom."]
    assert recall_quotes("What's my cat called?", ["I adopted a cat last year. She is grey."]) == [
        "I adopted a cat last year."
    ]


def test_the_quote_is_told_back_from_the_assistants_side():
    assert as_told("I live in Oslo.", EN) == "You live in Oslo."
    assert as_told("Hi! My name is Ana, and I'm a nurse.", EN) == "Hi! Your name is Ana, and you're a nurse."
    assert as_told("I was born in Peru.", EN) == "You were born in Peru."
    assert as_told("I told you my name.", EN) == "I told you my name."  # "you" in it: left alone


def test_the_recall_note_sits_under_the_newest_question_only():
    chat = load_template("chat")
    history = [
        Message("user", "My dog is called Rex."), Message("assistant", "Nice!"),
        Message("user", "What is 2 plus 2?"), Message("assistant", "Four."),
    ]  # fmt: skip
    prompt = render_prompt(chat, history, "What is my dog's name?")
    assert prompt.endswith(
        'User: What is my dog\'s name?\n(The Assistant remembers: "Your dog is called Rex.")\nAssistant:'
    )
    assert "remembers" not in render_prompt(chat, history, "What is 3 plus 3?").split("Rex.")[-1]
    asked = [*history, Message("user", "What is my dog's name?"), Message("assistant", "Rex.")]
    later = render_prompt(chat, asked, "Write a long story about a cat.")
    in_examples = render_prompt(chat, [], "Hello").count("(The Assistant remembers")
    assert later.count("(The Assistant remembers") == in_examples  # a held-open story copied older ones
    before = "".join(p.text for p in render_pieces(chat, history, "What is my dog's name?")[:-2])
    assert later.startswith(before)  # only the last exchange is read again
    plain = replace(chat, recall_note="")
    assert "remembers" not in render_prompt(plain, history, "What is my dog's name?").split("Rex.")[-1]


def test_the_chat_frames_examples_show_the_recall_note():
    prompt = render_prompt(load_template("chat"), [], "Hello")
    assert 'What is my favourite fruit?\n(The Assistant remembers: "Your favourite fruit is mango' in prompt


# -- the recalled words, favoured ------------------------------------------------------------------


def test_the_words_that_answer_are_the_ones_the_question_does_not_say():
    assert told_words("What is my dog's name?", ["Your dog is called Biscuit."], EN) == ("Biscuit",)
    assert told_words("How many cats do I have?", ["You have three cats at home."], EN) == ("three", "home")
    assert told_words("How old am I?", ["You're 35."], EN) == ("35",)  # not the "re" of "you're"
    assert told_words("What is my job?", [], EN) == ()


@pytest.mark.model
def test_a_recall_question_favours_the_told_words_early_in_the_reply(engine, template):
    told = [Message("user", "My dog is called Biscuit."), Message("assistant", "What a lovely name!")]
    session = ChatSession(engine, template, GREEDY, told)
    assert session.plan("What is my dog's name?").favour == ("Biscuit",)
    assert session.plan("What is the capital of Peru?").favour == ()
    no_recall = ChatSession(engine, replace(template, recall_note=""), GREEDY, told)
    assert no_recall.plan("What is my dog's name?").favour == ()
    vocab, piece, stops = engine.decoding.vocab, engine.decoding.piece, template.stop_strings()
    guard = EndGuard(vocab, piece, engine.tokenize, stops, 0, ("Biscuit",))
    word = engine.tokenize(" the")[0]
    ((favoured, lift),) = guard.nudge(0, word)
    assert set(engine.tokenize(" Biscuit")) <= set(favoured) and lift == FAVOUR > 0
    assert guard.nudge(FAVOUR_SPAN, word) == NO_NUDGE  # the reply is free after its first tokens
    assert guard.nudge(2, word, said=True) == NO_NUDGE  # and once the word is written
    assert guard.favours(engine.tokenize(" Biscuit")[0]) and not guard.favours(word)
    held = EndGuard(vocab, piece, engine.tokenize, stops, 30, ("Biscuit",)).nudge(0, word)
    assert [delta for _, delta in held] == [FAVOUR, -math.inf]  # with a minimum's bans beside it


@pytest.mark.model
def test_a_favoured_word_is_likelier_in_the_reply(engine, template):
    """The lift reaches the logits the sampler reads: the model's second choice for the reply's
    first token, favoured, is likelier than it was (whatever that choice is on this machine)."""
    prompt = ChatSession(engine, template, GREEDY).plan("Name an animal.").tokens
    assert_favour_lifts_the_second_choice(engine, prompt, template.stop_strings(), fresh=engine.clear_cache)


@pytest.mark.model
def test_a_favoured_word_once_written_is_not_pushed_again(smollm2_path, template):
    """Greedy with no penalty, a lift held on after the word was written made SmolLM2 answer
    "Which city do I live in?" with "Lisbon is Lisbon Lisbon Lisbon…" to the limit. The lift ends
    at the word's first token, locally, with drafting (every sampled token is checked) and in the
    alternatives a best-of reply draws."""
    from app.engine.base import PLAIN_GREEDY
    from app.engine.factory import open_backend

    turns = ["I live in Lisbon.", "Nice to meet you!", "What is the tallest mountain on Earth?", "Everest."]
    told = [Message("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(turns)]
    with open_backend(smollm2_path) as smol:
        for params in (replace(PLAIN_GREEDY, max_tokens=60), SamplingParams(seed=1, max_tokens=40)):
            reply = ChatSession(smol, template, params, told).ask("Which city do I live in?")
            assert reply.text.count("Lisbon") <= 2, reply.text
