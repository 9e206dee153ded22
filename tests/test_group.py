"""Group chats: the frame, who speaks next, each voice kept, the speaker stored — the rules in pure
Python, the label scores and the scene with the real default model, and the terminal's commands."""

from __future__ import annotations

import json

import pytest

from app.errors import InputError
from app.scaffold import Message, load_template
from app.scaffold.group import Member, addressed, as_speaker, choose, group_template
from app.scaffold.speakers import neutralise
from app.scaffold.transcript import header_text, render_pieces
from tests.helpers import basechat

NAMES = ("Mira", "Tomas", "Ines")
MEMBERS = [
    Member("Mira", "a cheerful baker"),
    Member("Tomas", "a grumpy old fisherman", ("Hi", "Cold today.")),
    Member("Ines", "a curious astronomy student"),
]
GROUP_FLAG = "Mira=a cheerful baker,Tomas=a grumpy old fisherman,Ines=a curious astronomy student"


@pytest.fixture(scope="module")
def group():
    return group_template(MEMBERS, load_template("chat"))


@pytest.mark.parametrize(
    ("message", "member"),
    [
        ("Mira, what do you think?", "Mira"),
        ("What do you think, Ines?", "Ines"),
        ("Tomas told me you were busy. Ines, is that true?", "Ines"),
        ("I agree with Tomas. But Mira, you said otherwise, didn't you?", "Mira"),
        ("So, Tomas, what are your plans?", "Tomas"),
        ("Hey Ines, could you help me?", "Ines"),
        ("I wonder what Tomas would say.", "Tomas"),
        ("Good morning, everyone!", ""),
        ("Miranda is not here.", ""),
    ],
)
def test_the_member_called_is_found_by_how_they_are_called_not_who_is_named_first(message, member):
    assert addressed(message, NAMES) == member


def test_the_frame_is_the_same_whoever_speaks_and_every_label_ends_a_reply(group):
    assert header_text(as_speaker(group, "Mira")) == header_text(as_speaker(group, "Ines"))
    assert {"\nMira:", "\nTomas:", "\nInes:", "\nUser:", "\nAbout Ines:"} <= set(group.stop_strings())
    assert neutralise("Tomas: I confess!", group).startswith("> Tomas:")
    assert "About Tomas: a grumpy old fisherman" in group.preamble and "Tomas: Cold today." in group.preamble
    history = [Message("user", "Hi all"), Message("assistant", "Hello!", speaker="Tomas")]
    pieces = render_pieces(as_speaker(group, "Ines"), history, None)
    assert pieces[-2].text == "Tomas: Hello!\n" and pieces[-1].text == "Ines:"


def test_a_group_needs_two_members_each_with_a_name_of_their_own(group):
    with pytest.raises(InputError, match="2 to 8"):
        group_template(MEMBERS[:1], load_template("chat"))
    with pytest.raises(InputError, match="name of their own"):
        group_template([Member("Mira"), Member("mira")], load_template("chat"))
    with pytest.raises(InputError, match="not a member"):
        as_speaker(group, "Bob")


def test_a_named_member_answers_whatever_the_models_odds():
    odds = [-0.1, -3.0, -2.5]  # the model would pick Mira
    assert choose(NAMES, "model", "Ines, and you?", [""], odds).speaker == "Ines"
    assert choose(NAMES, "model", "Ines, and you?", [""], [-0.01, -0.1, -30.0]).speaker == "Ines"
    assert choose(NAMES, "model", "Hello!", [""], odds).speaker == "Mira"
    assert choose(NAMES, "addressed", "Hello!", ["", "Tomas"], odds).speaker == "Ines"  # in turn
    assert choose(NAMES, "model", "Ines, and you?", [""], None).speaker == "Ines"  # a server: no odds
    assert choose(NAMES, "in_turn", "Ines, and you?", [""], odds).speaker == "Mira"


def test_nobody_speaks_twice_in_a_row_and_a_silent_member_gets_a_turn():
    assert choose(NAMES, "model", "Fish again.", ["", "Mira"], [0.0, -5.0, -6.0]).speaker == "Tomas"
    # Tomas and Ines have held the scene; Mira's odds grow with her silence until she speaks.
    held = ["Tomas", "Ines", "Tomas", "Ines"]
    assert choose(NAMES, "model", "Yes.", held, [-4.0, -0.01, -9.0]).speaker == "Mira"
    assert choose(NAMES, "model", "Yes.", held[-1:], [-4.0, -0.01, -9.0]).speaker == "Tomas"
    assert choose(NAMES, "in_turn", "Yes.", ["", "Tomas"], None).speaker == "Ines"


def test_the_speaker_is_drawn_by_the_odds_when_sampling():
    odds = [-0.7, -0.7, -100.0]  # half Mira, half Tomas
    assert choose(NAMES, "model", "Hi", [""], odds, draw=0.1).speaker == "Mira"
    assert choose(NAMES, "model", "Hi", [""], odds, draw=0.9).speaker == "Tomas"


def test_the_speaker_is_stored_and_kept_by_an_export(tmp_path):
    from app.store import ChatStore
    from app.store.export import as_messages, import_json, to_json

    store = ChatStore(tmp_path / "chats.db")
    cid = store.create_conversation("Scene", "group")
    store.add_user_message(cid, "Hi all")
    reply = store.begin_reply(cid, "m", speaker="Tomas")
    store.finish_reply(reply, "Cold today.")
    [new] = import_json(store, to_json(store, [cid]))
    for conversation in (cid, new):
        assert [m.speaker for m in store.path_slice(conversation, 0)] == ["", "Tomas"]
    assert as_messages(store.path_slice(new, 0))[1].speaker == "Tomas"


# -- the real model ------------------------------------------------------------------------------


@pytest.mark.model
def test_label_scores_are_the_models_own_and_leave_the_prompt_cached(engine, group):
    from app.engine.base import PLAIN_GREEDY

    prompt = engine.tokenize(header_text(group) + "User: Tomas, how was the sea today?\n")
    options = [engine.tokenize(f"{name}:") for name in NAMES]
    engine.clear_cache()
    scores = engine.continuation_logprobs(prompt, options)
    after = engine.generate(prompt + options[1], PLAIN_GREEDY, ["\n"]).run()
    assert after.usage.cached_tokens >= len(prompt)  # the reply reused the scored prompt
    alone = []
    for option in options:  # each scored by itself, in the same batches: no option sees another's
        engine.clear_cache()
        alone += engine.continuation_logprobs(prompt, [option])
    assert scores == alone
    for option, score in zip(options, scores, strict=True):  # llama.cpp's floats vary with the batch
        scored = engine.score(prompt + option)[-len(option) :]
        assert score == pytest.approx(sum(s.logprob for s in scored), abs=0.75)


@pytest.mark.model
def test_a_scene_goes_on_with_each_member_in_their_own_voice(engine, group):
    from app.chat import ChatSession
    from app.engine.base import SamplingParams

    session = ChatSession(engine, group, SamplingParams(seed=7, max_tokens=48))
    speakers = []
    first = session.choose_speaker("Hello everyone!")
    session.speak(first.speaker, "Hello everyone!").run()
    for _ in range(5):
        choice = session.choose_speaker(None)
        reply = session.speak(choice.speaker).run()
        assert reply.message.speaker == choice.speaker
        assert not any(f"\n{name}:" in reply.message.raw for name in (*NAMES, "User"))  # every label stops
        speakers.append(choice.speaker)
    assert all(a != b for a, b in zip([first.speaker, *speakers], speakers, strict=False))
    assert [m.speaker for m in session.history[1:]] == [first.speaker, *speakers]


@pytest.mark.model
def test_the_terminal_asks_a_group_and_stores_a_scene(data_dir):
    def run(*args, stdin=None):
        return basechat("--data-dir", str(data_dir), *args, stdin=stdin)

    asked = run("ask", "--group", GROUP_FLAG, "--next-speaker", "addressed", "--turns", "2", "--json",
                "--max-tokens", "40", "Tomas, how was the sea today?")  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    out = json.loads(asked.stdout)
    assert out["speaker"] == "Tomas" and len(out["scene"]) == 3
    said = [turn["speaker"] for turn in out["scene"]]
    assert set(said) <= set(NAMES) and said[1] != said[0] and said[2] != said[1]
    chat = run("chat", "--group", GROUP_FLAG, "--max-tokens", "40", stdin="Hello!\n/as Ines\n/talk 2\n")
    assert chat.returncode == 0, chat.stderr
    [listed] = json.loads(run("chats", "list", "--json").stdout)
    shown = json.loads(run("chats", "show", str(listed["id"]), "--json").stdout)
    roles = [m["role"] for m in shown["messages"]]
    assert roles == ["user"] + ["assistant"] * 4
    assert shown["messages"][2]["speaker"] == "Ines" and all(m["speaker"] for m in shown["messages"][1:])
    resumed = run("ask", "--resume", str(listed["id"]), "--as", "Mira", "--json", "--max-tokens", "9", "Hm")
    assert resumed.returncode == 0, resumed.stderr  # the stored frame is still the group
    assert json.loads(resumed.stdout)["speaker"] == "Mira"
    wrong = run("ask", "--group", GROUP_FLAG, "--as", "Bob", "Hi")
    assert wrong.returncode == 1 and "not a member" in wrong.stderr and "Traceback" not in wrong.stderr
