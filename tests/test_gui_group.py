"""A group chat in the real window, offscreen: the member bar, a named member answering, a member
picked to speak, letting them talk, and Stop ending that."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import Qt

from app.scaffold.group import Member
from tests.helpers import LONG, settled

pytestmark = pytest.mark.model

MEMBERS = [Member("Mira", "a cheerful baker"), Member("Tomas", "a grumpy old fisherman"),
           Member("Ines", "a curious astronomy student")]  # fmt: skip


def speakers(window) -> list[str]:
    return [m.speaker for m in window.store.path_slice(window.conversation_id, 0) if m.role == "assistant"]


def test_a_group_chat_in_the_window(qtbot, window):
    window.settings.setValue("sampling/max_tokens", 32)
    window.groups.start_group(MEMBERS)
    bar = window.members_bar
    assert bar.isVisible() and list(bar.buttons) == ["Mira", "Tomas", "Ines"]
    qtbot.keyClicks(window.composer.editor, "Tomas, how was the sea today?")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    assert speakers(window) == ["Tomas"] and window.view.turns[-1].header.text() == "Tomas"
    assert bar.shares.text().startswith("Tomas speaks (") and "Ines" in bar.shares.text()

    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.mouseClick(bar.buttons["Ines"], Qt.MouseButton.LeftButton)
    settled(qtbot, window)
    assert speakers(window) == ["Tomas", "Ines"]

    bar.turns.setValue(3)
    qtbot.mouseClick(bar.talk, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(speakers(window)) == 5 and not window.replies.busy, timeout=3 * LONG)
    said = speakers(window)
    assert all(a != b for a, b in itertools.pairwise(said)) and set(said) <= {"Mira", "Tomas", "Ines"}
    assert [t.header.text() for t in window.view.turns if t.role == "assistant"] == said


def test_stop_ends_letting_them_talk(qtbot, window):
    window.groups.start_group(MEMBERS)
    window.settings.setValue("sampling/max_tokens", 200)
    qtbot.keyClicks(window.composer.editor, "Hello everyone!")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    window.members_bar.turns.setValue(6)
    stops: list[str] = []

    def stop_once(_id, name, _shares) -> None:  # Stop as the first member starts, before its reply ends
        if not stops:
            stops.append(name)
            window.composer.stop_requested.emit()

    window.worker.speaker_chosen.connect(stop_once)
    qtbot.mouseClick(window.members_bar.talk, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(stops), timeout=LONG)
    settled(qtbot, window)
    assert window.groups.talk_left == 0 and len(speakers(window)) <= 2


def test_a_muted_member_is_never_chosen(qtbot, window):
    window.groups.start_group(MEMBERS)
    bar = window.members_bar
    for name in ("Mira", "Ines"):
        bar.buttons[name].customContextMenuRequested.emit(bar.buttons[name].rect().center())
    assert bar.buttons["Mira"].text() == "Mira (muted)"
    qtbot.keyClicks(window.composer.editor, "Hello everyone! How are you all?")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    assert speakers(window) == ["Tomas"] and "Mira" not in bar.shares.text()


def test_regenerating_a_reply_after_a_reply_in_a_one_character_chat_is_a_reply(qtbot, window):
    """Two replies in a row (an imported log can have them): regenerating the second is an
    ordinary regenerate there, not a group member's scene turn (which has no member to cue)."""
    store = window.store
    cid = window.service.start(window.template, window.replies.params(), "gemma3-270m")
    store.add_user_message(cid, "Hello!")
    for text in ("Hi there.", "How can I help?"):
        store.finish_reply(store.begin_reply(cid, "gemma3-270m"), text)
    window.chats.open(cid)
    failed = []
    window.worker.reply_failed.connect(lambda _id, message: failed.append(message))
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.replies.regenerate(2)
    settled(qtbot, window)
    assert not failed and len(store.alternatives(cid, 2)) == 2
