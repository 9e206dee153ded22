"""`basechat templates …` and `chats export --format prompt`, as real processes; a card chatting
with the real model; importing by dropping a file on the real window."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.chat import ChatSession
from app.engine.base import SamplingParams
from app.scaffold.imports import import_bytes
from tests import frames
from tests.helpers import assert_one_line_error, basechat

pytestmark = pytest.mark.model


def run(data_dir, *args, stdin=None):
    return basechat("--data-dir", str(data_dir), *args, stdin=stdin)


def test_import_list_show_export_delete(data_dir, tmp_path):
    card = frames.write(tmp_path / "mira.png", frames.png_with_text({"chara": frames.card_v2()}))
    imported = run(data_dir, "templates", "import", str(card))
    assert imported.returncode == 0, imported.stderr
    assert "Imported PNG Character Card V2 as template 'captain-mira'" in imported.stdout
    rows = {r["name"]: r for r in json.loads(run(data_dir, "templates", "list", "--json").stdout)}
    assert rows["captain-mira"]["own"] and not rows["chat"]["own"]
    assert rows["captain-mira"]["speakers"] == ["User", "Captain Mira"]
    shown = run(data_dir, "templates", "show", "captain-mira").stdout
    assert 'assistant_name = "Captain Mira"' in shown and "greeting" in shown
    out = tmp_path / "card.json"
    assert (
        run(data_dir, "templates", "export", "captain-mira", "--format", "card", "-o", str(out)).returncode
        == 0
    )
    assert json.loads(out.read_text())["data"]["first_mes"].startswith("Welcome aboard, {{user}}.")
    again = run(data_dir, "templates", "import", str(out))
    assert "as template 'captain-mira-2' (renamed: 'captain-mira' was taken)" in again.stdout
    assert run(data_dir, "templates", "delete", "captain-mira-2").returncode == 0
    assert_one_line_error(run(data_dir, "templates", "delete", "chat"), "shipped with Basechat")
    assert_one_line_error(run(data_dir, "templates", "import", str(tmp_path / "nope.json")), "Cannot read")


def test_a_bad_import_is_one_line_and_writes_nothing(data_dir, tmp_path):
    broken = frames.write(tmp_path / "broken.json", '{"spec": "chara_card_v2", "data": {')
    assert_one_line_error(run(data_dir, "templates", "import", str(broken)), "not valid JSON")
    assert not (data_dir / "templates").exists() or not list((data_dir / "templates").iterdir())


def test_preset_notes_go_to_stderr(data_dir, tmp_path):
    preset = frames.write(tmp_path / "ctx.json", frames.CONTEXT_PRESET)
    result = run(data_dir, "templates", "import", str(preset))
    assert result.returncode == 0
    assert result.stderr.strip() == "basechat: note: not used: trim_sentences, use_stop_strings."


def test_export_as_prompt_is_the_prefix_of_the_next_prompt(data_dir, engine):
    from app.scaffold import load_template
    from app.store import ChatStore
    from app.store.export import to_prompt

    chatted = run(data_dir, "chat", "--temperature", "0", stdin="My name is Ann.\nWhat is 2+2?\n")
    assert chatted.returncode == 0, chatted.stderr
    cid = json.loads(run(data_dir, "chats", "list", "--json").stdout)[0]["id"]
    exported = run(data_dir, "chats", "export", str(cid), "--format", "prompt")
    assert exported.returncode == 0
    store = ChatStore(data_dir / "basechat.db")
    conversation = store.get(cid)
    assert exported.stdout == to_prompt(conversation)
    from app.store.export import as_messages

    session = ChatSession(engine, load_template("chat"), SamplingParams(), as_messages(conversation.messages))
    plan = session.plan("And 3+3?")
    assert plan.text == exported.stdout + "User: And 3+3?\nAssistant:"


def test_an_imported_card_chats_in_character(engine):
    template = import_bytes(json.dumps(frames.card_v2()).encode(), "mira.json").template
    session = ChatSession(engine, template, SamplingParams(temperature=0.0, max_tokens=60))
    reply = session.ask("Where are we flying today, captain?")
    assert reply.completion.finish_reason == "stop" and reply.text
    assert "User:" not in reply.text and "Captain Mira:" not in reply.text
    prompt = session.plan("Thanks.").text
    assert "Captain Mira: Welcome aboard, User." in prompt


def test_dropping_a_card_on_the_window_imports_it_and_shows_its_greeting(
    qtbot, tmp_path, data_dir, monkeypatch
):
    from PySide6.QtCore import QSettings

    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    monkeypatch.setenv("BASECHAT_DATA_DIR", str(data_dir))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(ChatStore(tmp_path / "chats.db"), settings)
    qtbot.addWidget(win)
    win.show()
    card = frames.write(tmp_path / "mira.png", frames.png_with_text({"ccv3": frames.card_v3()}))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(card))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)  # fmt: skip
    win.dropEvent(drop)  # Qt delivers drops only from a real drag; the handler is called as Qt would
    assert drop.isAccepted()
    assert win.template.assistant_name == "Captain Mira"
    assert "Imported PNG Character Card V3 as 'captain-mira'" in win.statusBar().currentMessage()
    greeting = win.view.greeting
    assert greeting is not None and greeting.body.toPlainText().startswith("Welcome aboard, User.")
    assert win.frame.greeting.count() == 3 and win.frame.greeting.isEnabled()
    win.frame.greeting.setCurrentIndex(1)
    win.frame.greeting.activated.emit(1)
    assert win.view.greeting.body.toPlainText() == "Ah, User. You're late."
    win.frames.import_frame(str(tmp_path / "missing.json"))
    assert "Cannot read" in win.statusBar().currentMessage() and win.template.assistant_name == "Captain Mira"
    win.close()


def test_html_in_a_greeting_is_shown_as_text(qtbot):
    from app.ui.messages import MessageWidget

    widget = MessageWidget("assistant", -1, "Mira")
    qtbot.addWidget(widget)
    widget.set_final("<b>bold?</b> <img src=x> **real bold**")
    assert widget.body.toPlainText() == "<b>bold?</b> <img src=x> real bold"
