"""The real window with its model on a real llama-server: Settings' engine choice, the connection
test, a chat through the server, and the API key kept out of the settings file."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app.store import ChatStore
from app.ui.main_window import MainWindow
from app.ui.settings import SettingsDialog, load_engine
from tests.helpers import LONG, send
from tests.servers import BIN, start_llama_server

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not (BIN / "llama-server").exists(), reason="run 'make servers' first"),
]


@pytest.fixture(scope="module")
def keyed_server(model_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("gui-ls") / "server.log"
    server = start_llama_server(model_path, log, "--api-key", "gui-s3cret")
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("sampling/temperature", 0.0)
    return settings


def test_settings_test_connection_shows_the_server_model(qtbot, settings, keyed_server):
    dialog = SettingsDialog(_params(settings), load_engine(settings))
    qtbot.addWidget(dialog)
    fields = dialog.server
    assert not fields.url.isEnabled()  # "This computer" until Server is chosen
    fields.mode.setCurrentIndex(1)
    fields.url.setText(keyed_server.url)
    fields.test.click()
    qtbot.waitUntil(lambda: fields.result.text() not in ("", "Connecting…"), timeout=LONG)
    assert "API key" in fields.result.text()  # no key yet: the server refused, in one line
    fields.key.setText("gui-s3cret")
    fields.test.click()
    qtbot.waitUntil(lambda: fields.result.text().startswith("Connected"), timeout=LONG)
    assert "gemma-3-270m" in fields.result.text() and "context 4096" in fields.result.text()


def test_the_window_chats_through_the_server_and_keeps_the_key_out_of_settings(
    qtbot, tmp_path, data_dir, monkeypatch, settings, keyed_server
):
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(data_dir))
    dialog = SettingsDialog(_params(settings), load_engine(settings))
    dialog.server.mode.setCurrentIndex(1)
    dialog.server.url.setText(keyed_server.url)
    dialog.server.key.setText("gui-s3cret")
    dialog.save_engine(settings)
    settings.sync()
    assert "gui-s3cret" not in (tmp_path / "settings.ini").read_text()
    win = MainWindow(ChatStore(tmp_path / "chats.db"), settings)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.worker.model_ready, timeout=LONG):
        win.load_model("gemma3-270m")
    assert win.model_info["kind"] == "remote"
    assert "gemma-3-270m" in win.status_line.text() and "llama-server" in win.device_label.text()
    assert win.model_picker.currentText().endswith("(server)")
    send(qtbot, win, "What is the capital of France?")
    assert "Paris" in win.view.turns[1].text
    stored = win.store.get(win.conversation_id).messages[-1]
    assert stored.status == "done" and "Paris" in stored.text
    win.close()


def _params(settings):
    from app.ui.settings import load_sampling

    return load_sampling(settings)


def test_a_server_without_a_tokenizer_is_named_in_the_prompt_inspector(
    qtbot, tmp_path, data_dir, monkeypatch, settings
):
    from tests.servers import FaultServer

    stub = FaultServer()
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(data_dir))
    settings.setValue("engine/mode", "server")
    settings.setValue("engine/server_url", stub.url)
    win = MainWindow(ChatStore(tmp_path / "chats.db"), settings)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.worker.model_ready, timeout=LONG):
            win.load_model("gemma3-270m")
        assert "estimated" in win.frame.engine_note.text()
        send(qtbot, win, "Hello")
        assert win.view.turns[1].text == "Paris."
    finally:
        win.close()
        stub.close()
