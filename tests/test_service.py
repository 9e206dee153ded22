"""The conversation service: one settings shape, so a chat moves between the terminal and the
window with its sampling and its frame (both directions), and old flat settings still read."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings

from app.engine.base import SamplingParams
from app.scaffold import template_from_dict
from app.service import ConversationService, conversation_params, sampling_overrides, settings_shape
from app.store import ChatStore
from app.store.db import DB_NAME
from tests.helpers import LONG, basechat, send

EDITED = {
    "name": "edited-frame", "user_name": "Visitor", "assistant_name": "Guide",
    "preamble": "A museum guide answers a visitor's questions, one short sentence at a time.",
}  # fmt: skip


def _window(qtbot, data_dir, settings_file):
    from app.ui.main_window import MainWindow

    settings = QSettings(str(settings_file), QSettings.Format.IniFormat)
    win = MainWindow(ChatStore(data_dir / DB_NAME), settings)
    qtbot.addWidget(win)
    return win


@pytest.mark.model
def test_a_terminal_chat_opens_in_the_window_with_its_sampling_and_its_edited_frame(
    qtbot, data_dir, tmp_path
):
    frame = tmp_path / "elsewhere" / "edited.toml"  # a frame file that is not an installed template
    frame.parent.mkdir()
    frame.write_text("".join(f'{key} = "{value}"\n' for key, value in EDITED.items()))
    flags = ["--temperature", "0.3", "--top-k", "7", "--max-tokens", "8", "--template", str(frame)]
    result = basechat("--data-dir", str(data_dir), "chat", *flags, stdin="Hello there.\n")
    assert result.returncode == 0, result.stderr
    frame.unlink()  # the conversation keeps its own copy

    win = _window(qtbot, data_dir, tmp_path / "window.ini")
    [conversation] = win.store.list_conversations()
    win.chats.open(conversation.id)
    params = win.replies.params()
    assert (params.temperature, params.top_k, params.max_tokens) == (0.3, 7, 8)
    assert win.template.preamble == EDITED["preamble"] and win.template.assistant_name == "Guide"
    assert [t.role for t in win.view.turns] == ["user", "assistant"]
    win.close()


@pytest.mark.model
def test_a_window_chat_resumes_in_the_terminal_with_its_sampling_and_its_edited_frame(
    qtbot, data_dir, tmp_path
):
    win = _window(qtbot, data_dir, tmp_path / "window.ini")
    for key, value in {"temperature": 0.0, "top_k": 3, "max_tokens": 12}.items():
        win.settings.setValue(f"sampling/{key}", value)
    win.show()
    with qtbot.waitSignal(win.worker.model_ready, timeout=LONG):
        win.load_model("gemma3-270m")
    win.frames.set_template(template_from_dict(EDITED))
    send(qtbot, win, "Where is the painting of the river?")
    cid = win.conversation_id
    win.close()

    result = basechat("--data-dir", str(data_dir), "ask", "--resume", str(cid), "--json", "And the statue?")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["template"] == "edited-frame"
    assert (out["sampling"]["temperature"], out["sampling"]["top_k"], out["sampling"]["max_tokens"]) == (
        0.0,
        3,
        12,
    )
    assert out["prompt_tokens"] > 0 and out["completion_tokens"] <= 12
    shown = json.loads(basechat("--data-dir", str(data_dir), "chats", "show", str(cid), "--json").stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2
    assert shown["settings"]["frame"]["preamble"] == EDITED["preamble"]


@pytest.mark.model
def test_flags_given_in_the_terminal_win_over_the_conversations_own(data_dir, tmp_path):
    store = ChatStore(data_dir / DB_NAME)
    service = ConversationService(store)
    cid = service.start(template_from_dict(EDITED), SamplingParams(temperature=0.2, top_k=5))
    assert service.params(cid, SamplingParams()).top_k == 5
    result = basechat("--data-dir", str(data_dir), "ask", "--resume", str(cid), "--json", "--top-k", "9",
                      "--max-tokens", "4", "Hi")  # fmt: skip
    assert result.returncode == 0, result.stderr
    sampling = json.loads(result.stdout)["sampling"]
    assert (sampling["temperature"], sampling["top_k"], sampling["max_tokens"]) == (0.2, 9, 4)


def test_old_flat_settings_are_read_as_the_conversations_sampling(tmp_path):
    store = ChatStore(tmp_path / "old.db")
    flat = {"temperature": 0.3, "top_k": 7, "top_p": 0.9, "min_p": 0.05, "repeat_penalty": 1.0,
            "repeat_last_n": 64, "max_tokens": 99, "seed": None, "ignore_eos": False,
            "n_probs": 0}  # fmt: skip
    cid = store.create_conversation(template="chat", settings=flat)
    service = ConversationService(store)
    params = service.open(cid).params(SamplingParams())
    assert (params.temperature, params.top_k, params.top_p, params.max_tokens) == (0.3, 7, 0.9, 99)
    assert service.open(cid).template.name == "chat"
    assert sampling_overrides(flat)["max_tokens"] == 99 and "n_probs" not in sampling_overrides(flat)


def test_one_shape_for_both_surfaces_and_bad_values_are_skipped():
    shape = settings_shape(SamplingParams(temperature=0.4), template_from_dict(EDITED))
    assert set(shape) == {"sampling", "frame"} and shape["frame"]["preamble"] == EDITED["preamble"]
    assert "n_probs" not in shape["sampling"] and "ignore_eos" not in shape["sampling"]
    hand_edited = {"sampling": {"temperature": "warm", "top_k": "12", "seed": -1}}
    params = conversation_params(hand_edited, SamplingParams())
    assert (params.temperature, params.top_k, params.seed) == (SamplingParams().temperature, 12, None)


def test_a_pinned_message_is_followed_when_edited_and_dropped_when_deleted(tmp_path):
    from app.scaffold import load_template

    service = ConversationService(ChatStore(tmp_path / DB_NAME))
    cid = service.start(load_template("chat"), SamplingParams())
    first = service.add_user(cid, "My dog is called Rex.")
    pinned = service.pin(cid, first, service.open(cid).template)
    assert pinned.memory == '{{user}} said: "My dog is called Rex."'
    assert service.pin(cid, first, pinned) == pinned  # twice: once
    service.edit_user(cid, 0, "My dog is called Bruno.")
    memory = service.open(cid).template.memory
    assert memory == '{{user}} said: "My dog is called Bruno."' and "Rex" not in memory
    edited = service.store.path_slice(cid, 0, 1)[0]
    service.delete_branch(edited.id, cid)
    assert service.open(cid).template.memory == ""


def test_the_chats_memory_covers_its_whole_path_and_follows_a_branch(tmp_path):
    from app.scaffold import load_template
    from app.scaffold.language import load_language

    service, en = ConversationService(ChatStore(tmp_path / DB_NAME)), load_language("en")
    cid = service.start(load_template("chat"), SamplingParams())
    service.add_user(cid, "My dog is called Rex.")
    for n in range(30):
        service.add_user(cid, f"Tell me about the number {n}.")
    assert service.memory(cid, en).recall("What's my dog called?") is not None
    service.edit_user(cid, 0, "I have a cat.")  # a new branch from the first message
    assert service.memory(cid, en).recall("What's my dog called?") is None  # the other branch's
    index = service.memory(cid, en)
    assert service.memory(cid, en) is index  # kept between messages, not built again
