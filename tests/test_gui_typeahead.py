"""Type-ahead in the real window (offscreen, the real model): a pause in typing evaluates the
prompt, so Send leaves only what changed to evaluate; typing during a reply leaves the reply be."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.helpers import LONG, send, settled

pytestmark = pytest.mark.model


def test_a_pause_in_typing_evaluates_the_prompt_and_send_reuses_it(qtbot, window):
    send(qtbot, window, "Hello!")
    before = window.worker.prefilled
    qtbot.keyClicks(window.composer.editor, "What is the largest desert on Earth?")
    qtbot.waitUntil(lambda: window.worker.prefilled > before, timeout=LONG)
    outcomes = []
    window.worker.reply_done.connect(lambda _id, outcome: outcomes.append(outcome))
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    usage = outcomes[-1].usage
    # the message was evaluated while typed: only its line break and the cue are left for Send
    assert usage.prompt_tokens - usage.cached_tokens <= 5


def test_typing_while_a_reply_is_written_does_not_disturb_it(qtbot, window):
    window.composer.editor.setPlainText("Tell me a long story about a lighthouse.")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG) as done:
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.replies.streaming is not None, timeout=LONG)
        qtbot.keyClicks(window.composer.editor, "And then")  # typed while the story streams
    settled(qtbot, window)
    assert done.args[1].finish_reason in ("stop", "length") and not done.args[1].error
    assert window.composer.editor.toPlainText() == "And then"
