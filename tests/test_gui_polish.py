"""The window as people expect it: each defect found in use, driven through the real window."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QAbstractButton, QFileDialog, QMessageBox, QToolButton

from app.engine.base import SamplingParams
from app.scaffold import load_template
from app.store import ChatStore
from app.ui.main_window import MainWindow
from tests.helpers import LONG, hover, send, settled

pytestmark = pytest.mark.model


def buttons(turn) -> list[str]:
    return [b.text() for b in turn.findChildren(QAbstractButton) if b.isVisible()]


def shows_buttons(qtbot, turn, *names: str) -> bool:
    """Buttons added to a shown widget appear when Qt's event loop next runs: wait for them. A
    turn's actions show under the mouse (and always under the newest reply): hover it first."""
    hover(turn)
    qtbot.waitUntil(lambda: set(names) <= set(buttons(turn)), timeout=5000)
    return True


def click(turn, text: str) -> None:
    next(b for b in turn.findChildren(QToolButton) if b.text() == text).click()


def test_a_sent_message_has_copy_and_edit_at_once(qtbot, window):
    send(qtbot, window, "Hello there")
    assert shows_buttons(qtbot, window.view.turns[0], "Copy", "Edit")


def test_actions_show_on_hover_as_icons_and_always_under_the_newest_reply(qtbot, window):
    send(qtbot, window, "Hello there")
    send(qtbot, window, "And again")
    first_user, older_reply, newest = window.view.turns[0], window.view.turns[1], window.view.turns[-1]
    qtbot.waitUntil(lambda: newest.action_bar.isVisible(), timeout=5000)
    assert not first_user.action_bar.isVisible() and not older_reply.action_bar.isVisible()
    assert not first_user.time.isVisible()
    hover(first_user)
    assert first_user.action_bar.isVisible() and first_user.time.isVisible() and first_user.time.text()
    copy = next(b for b in first_user.findChildren(QToolButton) if b.text() == "Copy")
    assert copy.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly and not copy.icon().isNull()
    assert copy.toolTip() == "Copy this message"
    hover(first_user, inside=False)
    assert not first_user.action_bar.isVisible()


def test_switching_versions_keeps_the_view_where_it_is(qtbot, window):
    window.settings.setValue("sampling/temperature", 1.0)
    for text in ("Name a fruit.", "Name a colour.", "Name a city.", "Name an animal."):
        send(qtbot, window, text)
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.replies.regenerate(7)
    settled(qtbot, window)
    window.resize(900, 420)
    qtbot.wait(50)
    bar = window.view.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum() // 2)
    before, widgets = bar.value(), list(window.view.turns)
    window.replies.choose_version(7, 0)
    qtbot.wait(50)
    assert bar.value() == before and window.view.turns == widgets  # updated in place, not rebuilt
    assert window.view.turns[-1].text == window.store.alternatives(window.conversation_id, 7)[0].text


def test_deleting_the_open_chat_asks_and_leaves_nothing_of_it(qtbot, window, monkeypatch):
    send(qtbot, window, "What is the capital of France?")
    cid = window.conversation_id
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.chats.delete(cid)
    assert window.store.get(cid) and window.conversation_id == cid
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.frame_dock.show()
    window.chats.delete(cid)
    assert window.conversation_id is None and window.view.turns == []
    assert window.sidebar.list.count() == 0 and "0 / 4,096 tokens" in window.status_line.text()
    qtbot.waitUntil(lambda: "France" not in window.frame.inspector.toPlainText(), timeout=LONG)


def test_the_inspector_and_the_send_agree_on_room_for_the_reply(qtbot, window):
    window.settings.setValue("sampling/max_tokens", 512)
    window.frame_dock.show()
    qtbot.waitUntil(lambda: "reply" in window.frame.usage.format(), timeout=LONG)
    assert "+ 512 reply of 4,096 tokens" in window.frame.usage.format()
    long_text = "word " * 3700
    window.composer.editor.setPlainText(long_text)
    window.frames.inspect_prompt()
    qtbot.waitUntil(lambda: "over the 4,096 context" in window.frame.usage.format(), timeout=LONG)
    assert "too long" in window.frame.inspector.toPlainText()
    window.composer.editor.setPlainText(long_text)
    with qtbot.waitSignal(window.worker.reply_failed, timeout=LONG):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, window)
    assert window.composer.editor.toPlainText().strip() == long_text.strip()  # given back


def test_stop_shows_at_once_and_keeps_what_was_shown(qtbot, window, endless_book):
    """A reply that cannot end by itself: only Stop ends it."""
    window.frames.set_template(load_template(endless_book))
    from tests.conftest import ENDLESS_SETTINGS

    for key, value in ENDLESS_SETTINGS.items():
        window.settings.setValue(f"sampling/{key}", value)
    qtbot.keyClicks(window.composer.editor, "The dragon of the north")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.replies.streaming.streamed_text) > 40, timeout=LONG)
    outcomes = []
    window.worker.reply_done.connect(lambda _rid, outcome: outcomes.append(outcome))
    streaming = window.replies.streaming
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Escape)
    assert streaming.status.text() == "stopped"  # at once, before the engine's thread answers
    shown = streaming.streamed_text
    qtbot.waitUntil(lambda: bool(outcomes), timeout=LONG)
    settled(qtbot, window)
    assert outcomes[0].finish_reason == "cancelled" and outcomes[0].usage.completion_tokens < 2000
    stored = window.store.get(window.conversation_id).messages[-1]
    assert stored.text == shown.strip() == window.view.turns[-1].text
    assert shows_buttons(qtbot, window.view.turns[-1], "Continue")  # a stopped reply can be continued


def test_the_status_line_is_one_line_and_shows_speed_only_when_it_means_something(qtbot, window):
    send(qtbot, window, "What is the capital of France?")
    line = window.status_line.text()
    assert line.startswith("Gemma 3 270M (base) · CPU · ") and line.count("tokens") == 1
    assert "tok/s" not in line
    window.settings.setValue("sampling/max_tokens", 60)
    send(qtbot, window, "Tell me a long story about a dragon and a knight.")
    if window.store.get(window.conversation_id).messages[-1].completion_tokens >= 16:
        assert "tok/s" in window.status_line.text()


def test_chat_list_dates_elided_titles_and_no_results(qtbot, window):
    send(qtbot, window, "A very long first message that would make the chat list scroll sideways forever")
    item = window.sidebar.list.item(0)
    assert item.text().split("\n")[1].startswith("Today ")
    assert item.toolTip().startswith("A very long first message")
    assert window.sidebar.list.textElideMode() == Qt.TextElideMode.ElideRight
    window.sidebar.search.setText("zebra crossing")
    assert window.sidebar.empty.isVisible() and "No chats match" in window.sidebar.empty.text()
    window.sidebar.search.setText("sideways")
    assert not window.sidebar.empty.isVisible() and window.sidebar.list.count() == 1


def test_export_a_chat_from_the_window(qtbot, window, tmp_path, monkeypatch):
    send(qtbot, window, "What is the capital of France?")
    target = tmp_path / "chat.json"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "JSON, restorable (*.json)")
    )
    window.chats.export()
    data = json.loads(target.read_text())
    assert data["conversations"][0]["messages"][0]["text"] == "What is the capital of France?"
    prompt = tmp_path / "chat.txt"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(prompt), "Prompt text (*.txt)"))
    window.chats.export()
    answer = window.view.turns[1].text  # the model's words, whatever this machine's build picks
    assert prompt.read_text().endswith(f"User: What is the capital of France?\nAssistant: {answer}\n")


def test_inline_edit_of_a_reply_makes_a_new_version(qtbot, window):
    send(qtbot, window, "What is the capital of France?")
    reply = window.view.turns[1]
    answer = reply.text
    click(reply, "Edit")
    assert reply.editor.isVisible() and not reply.body.isVisible()
    reply.editor.setPlainText("The capital of France is Paris, on the Seine.")
    click(reply, "Save as new version")
    versions = window.store.alternatives(window.conversation_id, 1)
    assert [v.text for v in versions] == [answer, "The capital of France is Paris, on the Seine."]
    assert window.view.turns[1].text == versions[1].text and "2/2" in str(
        [w.text() for w in window.view.turns[1].findChildren(type(window.status_line))]
    )


def test_inline_edit_of_a_message_resends_it(qtbot, window):
    send(qtbot, window, "What is the capital of Spain?")
    send(qtbot, window, "And of Italy?")
    first = window.view.turns[0]
    click(first, "Edit")
    first.editor.setPlainText("What is the capital of France?")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        click(first, "Save && resend")
    settled(qtbot, window)
    stored = window.store.get(window.conversation_id).messages
    assert [m.text for m in stored][:1] == ["What is the capital of France?"] and len(stored) == 2


def test_the_last_chat_opens_again_on_launch(qtbot, window, tmp_path):
    send(qtbot, window, "Remember this chat")
    cid = window.conversation_id
    window.close()
    again = MainWindow(ChatStore(tmp_path / "chats.db"), QSettings(str(tmp_path / "settings.ini"),
                                                                   QSettings.Format.IniFormat))  # fmt: skip
    qtbot.addWidget(again)
    assert again.conversation_id == cid and again.view.turns[0].text == "Remember this chat"
    again.close()


def test_application_menu_quit_about_and_shortcuts(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMenu

    menus = window.menuBar().findChildren(QMenu)
    actions = {a.text().replace("&", ""): a for menu in menus for a in menu.actions()}
    assert actions["Quit"].shortcut().toString() == "Ctrl+Q"
    shown = {}
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, title, text: shown.update(about=text))
    monkeypatch.setattr(QMessageBox, "information", lambda _parent, title, text: shown.update(keys=text))
    actions["About Basechat"].trigger()
    actions["Keyboard shortcuts"].trigger()
    assert "Gemma Terms of Use" in shown["about"] and "llama-cpp-python" in shown["about"]
    assert "Ctrl+Q" in shown["keys"] and "Shift+Enter" in shown["keys"]
    chat_menu = next(m for m in menus if m.title().replace("&", "") == "Chat")
    for action in chat_menu.actions():  # every Chat shortcut is in the list
        assert action.shortcut().toString() in shown["keys"], action.text()


def test_settings_say_what_they_change_and_restore_defaults(qtbot, window):
    from app.ui.settings import SettingsDialog, load_engine, load_sampling

    dialog = SettingsDialog(load_sampling(window.settings), load_engine(window.settings), window)
    qtbot.addWidget(dialog)
    headings = [w.accessibleName() for w in dialog.findChildren(type(window.status_line))]
    assert any("applies to this chat and to new chats" in h for h in headings)
    assert any("the model reloads on OK" in h for h in headings)
    assert all(box.toolTip() for box in dialog.fields.values())
    dialog.fields["temperature"].setValue(1.7)
    dialog.fields["top_k"].setValue(3)
    dialog.restore_defaults()
    assert dialog.fields["temperature"].value() == pytest.approx(SamplingParams().temperature)
    assert dialog.fields["top_k"].value() == 40


def test_an_edited_frame_is_marked_and_can_be_reset(qtbot, window):
    send(qtbot, window, "Hi")
    window.frame_dock.show()
    assert not window.frame.edited_note.isVisible()
    window.frame.preamble.setPlainText("A transcript between a User and a pirate Assistant.")
    window.frame.apply_button.click()
    assert (
        window.frame.edited_note.isVisible()
        and "differs from the template 'chat'" in window.frame.edited_note.text()
    )
    window.frame.reset_button.click()
    assert not window.frame.edited_note.isVisible()
    assert window.template.preamble == load_template("chat").preamble


def test_the_models_table_fills_its_dialog(qtbot, window):
    from PySide6.QtWidgets import QHeaderView

    from app.ui.models_dialog import ModelsDialog

    dialog = ModelsDialog(window)
    qtbot.addWidget(dialog)
    dialog.resize(1400, 500)
    dialog.show()
    qtbot.wait(50)
    header = dialog.table.horizontalHeader()
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.Stretch
    assert header.length() >= dialog.table.viewport().width() - 2


def test_a_message_sent_before_the_model_is_ready_waits_for_it(qtbot, unloaded_window):
    """It used to be dropped without a word (the composer cleared itself)."""
    win = unloaded_window
    qtbot.waitUntil(lambda: win.focusWidget() is win.composer.editor, timeout=5000)  # typing goes there
    qtbot.keyClicks(win.composer.editor, "What is the capital of France?")
    qtbot.keyClick(win.composer.editor, Qt.Key.Key_Return)
    assert win.replies.waiting == ["What is the capital of France?"]
    assert "the model is loading" in win.statusBar().currentMessage()
    with qtbot.waitSignal(win.worker.reply_done, timeout=LONG):
        win.load_model("gemma3-270m")
    qtbot.waitUntil(lambda: not win.replies.busy, timeout=LONG)
    messages = win.store.get(win.conversation_id).messages
    assert messages[0].text == "What is the capital of France?" and messages[1].text
    win.close()


def test_the_alternatives_panel_of_one_chat_does_not_follow_into_the_next(qtbot, window):
    window.settings.setValue("sampling/temperature", 0.9)
    window.settings.setValue("loom/alternatives", 2)
    send(qtbot, window, "Name a colour.")
    assert window.loom.box is not None
    window.chats.new_chat()
    assert window.loom.box is None
    window.chats.new_notebook()
    assert window.loom.box is None


def test_speed_up_replies_is_a_setting_and_the_share_of_drafts_kept_is_shown(qtbot, window):
    """Settings offer off, from the text (the default) and the installed models that can draft;
    a notebook continuing a list drafts from the text, and the status line says how much was kept."""
    from app.ui.settings import SettingsDialog, load_engine, load_sampling

    assert load_engine(window.settings).draft == "lookup"
    dialog = SettingsDialog(load_sampling(window.settings), load_engine(window.settings), window,
                            draft_models=("gemma3-270m",))  # fmt: skip
    qtbot.addWidget(dialog)
    choices = [dialog.draft.itemText(i) for i in range(dialog.draft.count())]
    assert choices == ["Off", "From the text (prompt lookup)", "Draft model: Gemma 3 270M (base)"]
    assert dialog.draft.currentData() == "lookup" and dialog.draft.toolTip()
    dialog.draft.setCurrentIndex(0)
    dialog.save_engine(window.settings)
    assert load_engine(window.settings).draft == "off"
    dialog.restore_defaults()
    assert dialog.draft.currentData() == "lookup"
    window.settings.setValue("engine/draft", "lookup")
    window.settings.setValue("sampling/max_tokens", 48)
    window.chats.new_notebook()
    page = window.notebook.page
    page.editor.setPlainText(
        "Schedule\n" + "".join(f"Day {n}: water the plants and feed the cat.\n" for n in (1, 2, 3))
    )
    page.editor.moveCursor(page.editor.textCursor().MoveOperation.End)
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.notebook.continue_text(1)
    qtbot.waitUntil(lambda: window.notebook.request_id == 0, timeout=LONG)
    assert "tok/s · " in window.status_line.text()
    assert window.status_line.text().endswith("of drafted tokens accepted")


def test_a_preset_fills_the_sampling_numbers_and_the_penalty_can_leave_the_prompt_alone(qtbot, window):
    from app.engine.presets import PRESETS
    from app.ui.settings import SettingsDialog, load_engine, load_sampling, save_sampling

    dialog = SettingsDialog(load_sampling(window.settings), load_engine(window.settings), window)
    qtbot.addWidget(dialog)
    box = dialog.presets.box
    assert [box.itemText(i) for i in range(box.count())] == ["Custom", "Precise", "Balanced", "Creative"]
    box.setCurrentIndex(box.findData("creative"))
    box.activated.emit(box.currentIndex())
    assert dialog.fields["temperature"].value() == pytest.approx(PRESETS["creative"]["temperature"])
    assert dialog.fields["xtc_probability"].value() == pytest.approx(PRESETS["creative"]["xtc_probability"])
    dialog.presets.scope.setChecked(False)
    save_sampling(window.settings, dialog.sampling())
    again = load_sampling(window.settings)
    assert again.penalize_prompt is False and again.dry_multiplier == PRESETS["creative"]["dry_multiplier"]
    reopened = SettingsDialog(again, load_engine(window.settings), window)
    qtbot.addWidget(reopened)
    assert reopened.presets.box.currentData() == "creative" and not reopened.presets.scope.isChecked()


def test_a_background_answer_for_a_closed_widget_is_dropped(qtbot):
    """A model recommendation computed while its window closed used to land on deleted widgets
    (a traceback in the event loop); an answer for a destroyed owner is now dropped."""
    import threading

    import shiboken6
    from PySide6.QtWidgets import QLabel

    from app.ui.background import run_in_background

    def later(label: QLabel, gate: threading.Event, got: list) -> None:
        run_in_background(lambda _r: gate.wait(10) and "late", lambda r: (got.append(r), label.setText(r)),
                          got.append, owner=label)  # fmt: skip

    kept, gone, gate = QLabel(), QLabel(), threading.Event()
    got_kept: list = []
    got_gone: list = []
    later(kept, gate, got_kept)
    later(gone, gate, got_gone)
    gone.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(gone))
    gate.set()  # both answers arrive now
    qtbot.waitUntil(lambda: got_kept == ["late"])
    qtbot.wait(200)
    assert got_gone == [] and kept.text() == "late"


def test_a_short_answer_is_the_likeliest_of_four_and_best_of_1_streams(qtbot, window):
    """With the app's sampling a short answer is drawn four times: what the draws agree on shows
    as it comes, the likeliest's rest when they end, and together they are the reply. Settings'
    Best of at 1 streams a single draw again, token by token."""
    from app.ui.settings import SettingsDialog, load_engine, load_sampling, save_sampling

    chunks: list[str] = []
    draws: list[int] = []
    window.worker.token.connect(lambda _request, chunk: chunks.append(chunk))
    window.worker.drawing.connect(lambda _request, n: draws.append(n))  # the turn says "writing 4 answers…"
    for name, value in {"temperature": 0.3, "seed": 1, "best_of": 4}.items():
        window.settings.setValue(f"sampling/{name}", value)
    send(qtbot, window, "How many legs does a cat have?")
    assert "".join(chunks).strip() == window.replies.history()[-1].text
    assert draws == [4]

    dialog = SettingsDialog(load_sampling(window.settings), load_engine(window.settings), window)
    qtbot.addWidget(dialog)
    dialog.fields["best_of"].setValue(1)
    save_sampling(window.settings, dialog.sampling())
    assert load_sampling(window.settings).best_of == 1
    window.chats.new_chat()
    chunks.clear()
    send(qtbot, window, "How many legs does a cat have?")
    assert len(chunks) > 1 and draws == [4]


def test_replies_drawn_side_by_side_do_not_time_the_machine(qtbot, window, monkeypatch):
    """Four draws decode at about 2.4 times one draw's time, each at its own share of the speed:
    the status line says so, and only a reply drawn alone is offered to calibrate the
    better-model suggestion."""
    from app.engine.base import Usage

    offered: list[float] = []
    monkeypatch.setattr(window.models, "calibrate_from", lambda _tokens, speed: offered.append(speed))
    usage = Usage(prompt_tokens=800, cached_tokens=0, completion_tokens=40, ttft_s=0.1, tokens_per_s=25.0,
                  prompt_eval_s=0.1, total_s=1.7)  # fmt: skip
    window.replies.show_speed(usage, together=4)
    assert "25 tok/s × 4 at once" in window.status_line.text() and offered == []
    window.replies.show_speed(usage)
    assert "× 4" not in window.status_line.text() and offered == [25.0]
