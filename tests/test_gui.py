"""The real window, offscreen, with the real default model on its engine thread."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit

from app.store import ChatStore
from app.ui.main_window import MainWindow
from tests.helpers import LONG, send, settled

pytestmark = pytest.mark.model


def test_a_message_gets_a_streamed_reply_that_is_stored(qtbot, window):
    tokens = []
    window.worker.token.connect(lambda _rid, chunk: tokens.append(chunk))
    send(qtbot, window, "What is the capital of France?")
    assert len(tokens) >= 2  # it streamed, token by token
    roles = [t.role for t in window.view.turns]
    assert roles == ["user", "assistant"]
    assert "Paris" in window.view.turns[1].text
    stored = window.store.get(window.conversation_id).messages
    assert [m.text for m in stored] == ["What is the capital of France?", window.view.turns[1].text]
    assert window.sidebar.list.count() == 1
    assert "tok/s" not in window.status_line.text()  # "Paris." is too short to measure a speed
    assert window.composer.button.text() == "Send"


def test_shift_enter_is_a_new_line_and_enter_sends(qtbot, window):
    qtbot.keyClicks(window.composer.editor, "first line")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer.editor, "second line")
    assert window.composer.editor.toPlainText() == "first line\nsecond line"
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    assert window.view.turns[0].text == "first line\nsecond line"


def endless(window, endless_book) -> None:
    """A reply that cannot end by itself (speaker names the model never writes): only Stop ends it."""
    from app.scaffold import load_template

    window.frames.set_template(load_template(endless_book))
    from tests.conftest import ENDLESS_SETTINGS

    for key, value in ENDLESS_SETTINGS.items():
        window.settings.setValue(f"sampling/{key}", value)


def test_a_message_sent_while_a_reply_streams_waits_its_turn_and_is_never_glued(qtbot, window, endless_book):
    """Enter during a reply used to be ignored with the text left in place, so the next message
    was glued to it; now it is queued (the status line and the composer say so) and sent after."""
    endless(window, endless_book)
    qtbot.keyClicks(window.composer.editor, "Tell me a very long story about a dragon.")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitSignal(window.worker.token, timeout=LONG).wait()
    assert window.composer.button.text() == "Stop"
    qtbot.keyClicks(window.composer.editor, "a second message")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    assert window.composer.editor.toPlainText() == "" and window.replies.waiting == ["a second message"]
    assert "1 message waiting" in window.statusBar().currentMessage()
    qtbot.keyClicks(window.composer.editor, "a third")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    assert window.replies.waiting == ["a second message", "a third"]
    # The queued ones get short replies: the chat keeps its own sampling, so it is set there too.
    window.settings.setValue("sampling/max_tokens", 4)
    window.service.keep_sampling(window.conversation_id, replace(window.replies.params(), max_tokens=4))
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.replies.waiting and not window.replies.busy, timeout=LONG)
    stored = window.store.get(window.conversation_id).messages
    assert all(m.completion_tokens <= 4 for m in stored[3:] if m.role == "assistant")
    users = [m.text for m in stored if m.role == "user"]
    assert users == ["Tell me a very long story about a dragon.", "a second message", "a third"]
    assert stored[1].finish_reason == "cancelled" and len(stored) == 6


def test_regenerate_keeps_alternatives_and_navigates_them(qtbot, window):
    window.settings.setValue("sampling/temperature", 1.0)
    send(qtbot, window, "Name a fruit.")
    first = window.view.turns[1].text
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.replies.regenerate(1)
    settled(qtbot, window)
    alternatives = window.store.alternatives(window.conversation_id, 1)
    assert len(alternatives) == 2 and alternatives[0].text == first
    labels = [w.text() for w in window.view.turns[1].findChildren(QAbstractButton)]
    assert "‹" in labels and "›" in labels
    window.replies.choose_version(1, 0)
    assert window.view.turns[1].text == first


def test_a_finished_reply_renders_markdown(qtbot, window):
    send(qtbot, window, "Hello")
    turn = window.view.turns[1]
    turn.set_final("# Title\n\n- one\n- two\n\n```\ncode()\n```")
    turn.add_actions()
    html = turn.body.toHtml()
    assert "<h1" in html and "<li" in html and "code()" in html
    assert any(b.text() == "Copy code 1" for b in turn.findChildren(QAbstractButton))
    document = turn.body.document()
    title, item = document.begin(), document.find("one")
    assert title.blockFormat().headingLevel() == 1
    assert _size_at(document, title.position() + 1) == _size_at(document, item.position())  # no giant H1


def _size_at(document, position: int) -> float:
    cursor = QTextCursor(document)
    cursor.setPosition(position)
    return cursor.charFormat().font().pointSizeF()


def test_a_bad_model_file_is_reported_and_the_old_model_stays(qtbot, window, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model at all" * 100)
    with qtbot.waitSignal(window.worker.model_failed, timeout=LONG) as failed:
        window.load_model(str(bad))
    assert "not a GGUF" in failed.args[0]
    assert window.model_info["id"] == "gemma3-270m"
    send(qtbot, window, "Still there?")
    assert window.view.turns[-1].role == "assistant"


def test_every_control_has_an_accessible_name(window):
    controls = window.findChildren(QAbstractButton) + window.findChildren(QLineEdit)
    controls += window.findChildren(QPlainTextEdit) + window.findChildren(QComboBox)
    unnamed = [c for c in controls if c.isVisible() and not (c.accessibleName() or getattr(c, "text", str)())]
    assert unnamed == []


def test_new_chat_shortcut_and_window_state_are_remembered(qtbot, window, tmp_path):
    send(qtbot, window, "Hi")
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.view.turns == [] and window.conversation_id is None
    window.resize(700, 500)
    window.close()
    again = MainWindow(ChatStore(tmp_path / "chats.db"), window.settings)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (700, 500)
    assert again.sidebar.list.count() == 1
    again.close()


def test_edit_and_resend_drops_the_later_turns(qtbot, window):
    send(qtbot, window, "What is the capital of Spain?")
    send(qtbot, window, "And of Italy?")
    window.replies.edit_message(0)  # the message's own Edit: it becomes editable in place
    first = window.view.turns[0]
    first.editor.setPlainText("What is the capital of France?")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        first._save_edit()
    settled(qtbot, window)
    stored = window.store.get(window.conversation_id).messages
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[0].text == "What is the capital of France?"
    assert [t.text for t in window.view.turns][:1] == ["What is the capital of France?"]


def test_switching_conversation_during_a_reply_stops_it_and_keeps_what_was_written(
    qtbot, window, endless_book
):
    send(qtbot, window, "Hello")
    first = window.conversation_id
    window.chats.new_chat()
    endless(window, endless_book)
    qtbot.keyClicks(window.composer.editor, "Tell me a very long story about a dragon.")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    second = window.conversation_id
    # A word, not the first token: that may be a newline, which a kept reply trims away.
    qtbot.waitUntil(lambda: bool(window.view.turns[-1].body.toPlainText().strip()), timeout=LONG)
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.chats.open(first)
    settled(qtbot, window)
    assert window.conversation_id == first and len(window.view.turns) == 2
    reply = window.store.get(second).messages[-1]
    assert reply.status == "done" and reply.text  # stopped, and what it wrote is kept
    assert reply.finish_reason == "cancelled" and reply.completion_tokens < 2000
    assert window.composer.button.text() == "Send"


def test_a_send_that_cannot_fit_gives_the_text_back(qtbot, window):
    huge = "word " * 5000
    window.composer.editor.setPlainText(huge)
    with qtbot.waitSignal(window.worker.reply_failed, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    assert window.composer.editor.toPlainText() == huge.strip()
    assert "too long" in window.statusBar().currentMessage()
    assert window.view.turns == []
    assert window.store.get(window.conversation_id).messages == []


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="None is immortal from Python 3.12: its count never moves"
)
def test_streaming_into_the_view_keeps_python_reference_counts_sound(qtbot, window):
    """PySide6 6.12.0 under Python 3.11 released a reference to None on every void Qt call;
    a long reply then crashed the app ('deallocating None'). Guard against any such build."""
    import sys

    turn = window.view.add_turn("assistant", 0, "Assistant")
    turn.begin_stream()
    before = sys.getrefcount(None)
    for _ in range(500):
        turn.append(" word")
    qtbot.wait(10)
    assert sys.getrefcount(None) - before > -50


def test_model_manager_refuses_a_bad_gguf_with_a_reason(qtbot, window, tmp_path):
    from app.ui.models_dialog import ModelsDialog

    dialog = ModelsDialog(window)
    qtbot.addWidget(dialog)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    dialog.add_file(bad)
    qtbot.waitUntil(lambda: "damaged or truncated" in dialog.message.text(), timeout=LONG)
    assert window.isVisible()


def test_model_manager_downloads_with_progress_from_a_local_hub(qtbot, window, tmp_path, monkeypatch):
    from app.ui.models_dialog import ModelsDialog
    from tests.ggufs import write_gguf
    from tests.hub_server import start_hub

    path = write_gguf(tmp_path / "tiny.gguf", shape=(1024, 1024), seed=2)
    server = start_hub()
    server.hub.files[("test/tiny-GGUF", "tiny.gguf")] = path.read_bytes()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    (tmp_path / "catalog.toml").write_text(
        '[[model]]\nid = "tiny"\nname = "Tiny test model"\nparameters = "1M"\nquantisation = "F32"\n'
        'repo = "test/tiny-GGUF"\nfile = "tiny.gguf"\nsize = 4194304\nlicense = "test"\n'
        'context_length = 256\nmin_ram_gb = 1\ntemplate = "chat"\n'
    )
    dialog = ModelsDialog(window)
    qtbot.addWidget(dialog)
    row = next(
        r for r in range(dialog.table.rowCount()) if dialog.table.item(r, 0).text() == "Tiny test model"
    )
    button = dialog.table.cellWidget(row, dialog.table.columnCount() - 1)
    assert button.text() == "Download"
    with qtbot.waitSignal(dialog.models_changed, timeout=LONG):
        button.click()
    qtbot.waitUntil(lambda: "ready" in dialog.message.text(), timeout=LONG)
    assert (tmp_path / "models" / "tiny.gguf").read_bytes() == path.read_bytes()
    server.shutdown()


def test_turn_colours_follow_a_switch_to_a_dark_palette(qtbot, window):
    from PySide6.QtGui import QColor, QGuiApplication, QPalette
    from PySide6.QtWidgets import QApplication

    send(qtbot, window, "Hi")
    light = QGuiApplication.palette()
    dark = QPalette(light)
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.AlternateBase, QColor("#333842"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#e6e6e6"))
    QApplication.setPalette(dark)  # what the system switching to dark does
    try:
        user, reply = window.view.turns

        def shows(turn, colour: str) -> bool:
            """The colour drawn inside the bubble, next to its border: what a person sees."""
            image = turn.grab().toImage()
            return QColor(image.pixel(image.width() // 2, image.height() - 4)) == QColor(colour)

        qtbot.waitUntil(lambda: shows(user, "#333842") and shows(reply, "#1e1e1e"), timeout=5000)
        copy = next(b for b in reply.action_bar.findChildren(QAbstractButton) if b.text() == "Copy")
        drawn = copy.icon().pixmap(32, 32).toImage()
        inked = [QColor(drawn.pixel(x, y)) for x in range(32) for y in range(32) if drawn.pixel(x, y) >> 24]
        assert inked and max(c.lightness() for c in inked) > 200  # its icon is light on the dark bubble
    finally:
        QApplication.setPalette(light)
