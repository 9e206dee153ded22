"""The message plan in the real window (offscreen, the real model): the inspector lists what each
step does to the next message and why, and the Steps tab switches a step off for this chat."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.helpers import LONG

pytestmark = pytest.mark.model


def planned(qtbot, window, text: str, fragment: str, present: bool = True) -> None:
    """Wait until the inspector shows ``text``'s prompt and its plan note (the note arrives in the
    worker's last signal) does or does not say ``fragment``."""
    window.composer.editor.setPlainText(text)
    window.frames.inspect_prompt()

    def shown() -> bool:
        note = window.frame.plan_note.text()
        return text in window.frame.inspector.toPlainText() and (fragment in note) == present

    qtbot.waitUntil(shown, timeout=LONG)


def test_the_inspector_shows_the_plan_and_a_step_switched_off_leaves_it(qtbot, window):
    window.frame_dock.show()
    story = "Tell me a story about a dragon."
    planned(qtbot, window, story, "min_length: minimum 120 tokens")
    assert "request_note:" in window.frame.plan_note.text() and "'story'" in window.frame.plan_note.text()
    steps = window.frame.steps.list
    row = next(
        i for i in range(steps.count()) if steps.item(i).data(Qt.ItemDataRole.UserRole) == "min_length"
    )
    steps.item(row).setCheckState(Qt.CheckState.Unchecked)
    assert window.template.steps_off == ("min_length",)
    planned(qtbot, window, "Tell me a story about a cat.", "min_length", present=False)
    assert "request_note:" in window.frame.plan_note.text()  # the other steps still act


def test_a_long_chat_is_remembered_from_its_first_message_past_what_a_prompt_holds(qtbot, window):
    """The window's prompt holds only the chat's last turns; the memory step searches all of it."""
    from app.scaffold import Message
    from app.store.export import chain_export, import_json

    said = ["Hi! I adopted a beagle puppy today and named him Pepper."]
    talk = [f"Tell me something about the number {n}, please; I like numbers a lot." for n in range(600)]
    history = [
        Message(r, t)
        for u in [*said, *talk]
        for r, t in (("user", u), ("assistant", "Sure, here is what I know."))
    ]
    export = chain_export(history, "A long chat")
    [cid] = import_json(window.store, export)
    window.chats.open(cid)
    window.frame_dock.show()
    assert window.replies.tail().start > 0  # the first message is not among the turns read
    planned(qtbot, window, "What's my dog called?", "recall: quoting 1 earlier message(s) — message 1")
    assert "named him Pepper" in window.frame.inspector.toPlainText()
