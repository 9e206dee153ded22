"""Settings → "Serve on this computer": the real window, offscreen, serving its loaded model to the
official ``openai`` package on 127.0.0.1 — and the window and a client taking turns at the one
model (each waits for the other; neither gets "busy")."""

from __future__ import annotations

import socket
import threading

import pytest
from PySide6.QtCore import Qt

from tests.helpers import LONG, settled
from tests.servers import free_port

pytestmark = pytest.mark.model


def serve(win, port: int) -> None:
    win.settings.setValue("serve/on", "true")
    win.settings.setValue("serve/port", port)
    win.serving.apply()


def openai_client(port: int):
    from openai import OpenAI

    return OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)


def test_the_window_serves_its_model_and_says_where(qtbot, window):
    port = free_port()
    serve(window, port)
    done = openai_client(port).chat.completions.create(
        model="gemma3-270m", messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24, temperature=0,
    )  # fmt: skip
    assert done.choices[0].message.content.strip()
    window.serving.show_status()
    label = window.serving.label
    assert label.isVisible() and f"http://127.0.0.1:{port}/v1" in label.text() and "1 request" in label.text()
    window.settings.setValue("serve/on", "false")
    window.serving.apply()
    assert not label.isVisible()
    from openai import APIConnectionError

    with pytest.raises(APIConnectionError):  # nothing listens once the switch is off
        openai_client(port).models.list()


def test_a_port_in_use_is_one_line_and_the_window_goes_on(qtbot, window):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        serve(window, taken.getsockname()[1])
        message = window.statusBar().currentMessage()
    assert message.startswith("Cannot serve on 127.0.0.1:") and "\n" not in message
    assert window.serving.server is None and not window.serving.label.isVisible()


def test_a_window_reply_waits_for_a_client_then_is_written(qtbot, window):
    """A client's endless completion holds the model; the window's reply says it waits, and is
    written once the client leaves."""
    port = free_port()
    serve(window, port)
    streaming, leave = threading.Event(), threading.Event()

    def client_holds_the_model() -> None:
        stream = openai_client(port).completions.create(
            model="gemma3-270m", prompt="Once upon a time", max_tokens=3000, stream=True,
            extra_body={"ignore_eos": True},
        )  # fmt: skip
        next(iter(stream))
        streaming.set()
        leave.wait(LONG / 1000)
        stream.close()

    client = threading.Thread(target=client_holds_the_model)
    client.start()
    qtbot.waitUntil(streaming.is_set, timeout=LONG)
    qtbot.keyClicks(window.composer.editor, "Hello there!")
    with qtbot.waitSignal(window.worker.waiting, timeout=LONG) as waited:
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    assert waited.args[1] == "a request to the server"
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        leave.set()
    client.join()
    settled(qtbot, window)
    roles = [m.role for m in window.store.path_slice(window.conversation_id, 0)]
    assert roles[-2:] == ["user", "assistant"]


def test_a_client_waits_for_the_window_reply(qtbot, window):
    """While the window holds the model, a client's request waits (no 429) and is answered after."""
    port = free_port()
    serve(window, port)
    answered: list = []
    with window.worker.turns.taken("the window"):
        client = threading.Thread(target=lambda: answered.append(
            openai_client(port).completions.create(model="gemma3-270m", prompt="One, two,", max_tokens=4)
        ))  # fmt: skip
        client.start()
        qtbot.waitUntil(lambda: window.worker.turns.waiting == 1, timeout=LONG)
        assert not answered and window.serving.server.hub.served == 0
    client.join(LONG / 1000)
    assert answered and answered[0].choices[0].text is not None


def test_settings_show_the_switch_port_and_address(qtbot, window):
    from app.ui.serving import serving_wanted
    from app.ui.settings import SettingsDialog, load_engine

    dialog = SettingsDialog(window.replies.params(), load_engine(window.settings), serve=(False, 8080))
    qtbot.addWidget(dialog)
    dialog.serve.on.setChecked(True)
    dialog.serve.port.setValue(18123)
    assert "http://127.0.0.1:18123/v1" in dialog.serve.address.text()
    assert dialog.serve.save(window.settings) and not dialog.serve.save(window.settings)
    assert serving_wanted(window.settings) == (True, 18123)


def test_serving_starts_when_the_model_is_ready(qtbot, unloaded_window, model_path):
    """Switched on in Settings: the server starts once the model is loaded, on the GUI thread (its
    status timer runs; started from the engine's thread it would not)."""
    window, port = unloaded_window, free_port()
    window.settings.setValue("serve/on", "true")
    window.settings.setValue("serve/port", port)
    with qtbot.waitSignal(window.worker.model_ready, timeout=LONG):
        window.load_model("gemma3-270m")
    qtbot.waitUntil(lambda: window.serving.server is not None, timeout=LONG)
    assert window.serving.timer.isActive()
    assert openai_client(port).models.list().data[0].id == "gemma3-270m"
    window.close()


def test_the_wheel_scrolls_settings_without_changing_a_field(qtbot, window):
    """Scrolling down to the server's switch passes over lists and numbers: none of them changes
    unless it was clicked first."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from app.ui.settings import SettingsDialog, load_engine

    dialog = SettingsDialog(window.replies.params(), load_engine(window.settings))
    qtbot.addWidget(dialog)
    dialog.show()
    box, before = dialog.draft, dialog.draft.currentIndex()
    down = QWheelEvent(QPointF(5, 5), QPointF(5, 5), QPoint(0, -120), QPoint(0, -120),
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                       False)  # fmt: skip
    for _ in range(3):
        QApplication.sendEvent(box, down)
    assert box.currentIndex() == before and dialog.fields_area.verticalScrollBar().value() > 0


def test_the_model_is_not_freed_while_a_generation_holds_it(monkeypatch, tmp_path):
    """Closing the window frees the model only once nobody holds it: a stream of the window's
    server still ending would crash or hang in llama.cpp with its model freed under it."""
    from app.service import ConversationService
    from app.store import ChatStore
    from app.ui import worker as worker_module

    closed: list[bool] = []
    monkeypatch.setattr(worker_module, "_RELEASE_WAIT_S", 0.05)
    worker = worker_module.EngineWorker(ConversationService(ChatStore(tmp_path / "chats.db")))
    worker.engine = type("Engine", (), {"close": lambda self: closed.append(True)})()
    with worker.turns.taken("a request to the server"):
        worker.release_model()
        assert not closed and worker.engine is not None
    worker.release_model()
    assert closed == [True] and worker.engine is None
