"""Measurements of the window, each run by the bench in a child process of its own and printing
one JSON line: start-up time, and the longest stall of the event loop while replies stream.

They live here, not in ``app.measure``, because only ``app/ui/`` may use Qt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def offscreen_application():
    """Qt started with no display (the self-test proves a packaged build can start it)."""
    import os
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(sys.argv[:1])


def _since_process_start() -> float:
    import psutil

    return time.time() - psutil.Process().create_time()


def startup_probe() -> None:
    """Process start to main window shown, and to the default model ready (offscreen)."""
    import tempfile

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    app = QApplication([])
    data = Path(tempfile.mkdtemp())
    window = MainWindow(
        ChatStore(data / "chats.db"), QSettings(str(data / "s.ini"), QSettings.Format.IniFormat)
    )
    window.show()
    app.processEvents()
    shown = _since_process_start()
    ready: dict = {}
    window.worker.model_ready.connect(lambda _info: ready.setdefault("at", _since_process_start()))
    window.worker.model_failed.connect(lambda _msg: ready.setdefault("at", float("nan")))
    window.load_model("gemma3-270m")
    while "at" not in ready:
        app.processEvents()
        time.sleep(0.001)
    print(json.dumps({"startup_window_s": round(shown, 3), "startup_model_s": round(ready["at"], 3)}))
    window.close()


def gui_probe(path: str, n_tokens: int) -> None:
    """Longest event-loop stall while a model loads and a long reply streams into the window,
    and the window's own time per token over the last 100 tokens vs the first 100."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    app, window = _bench_window(n_tokens)
    stalls = _StallMeter(QTimer, QElapsedTimer)
    token_costs = _time_token_handler(window)
    stalls.start()
    window.request_load.emit("bench", path, _engine_settings())
    _spin(app, lambda: bool(window.model_info))
    load_stall = stalls.take()
    setattr(window.replies, "params", lambda: _long_reply_params(n_tokens))  # noqa: B010 - a long reply
    window.template = _endless_book()
    window.replies.send("The history of the number zero")
    stalls.start()
    _spin(app, lambda: window.replies.streaming is None)
    stream_stall = stalls.take()
    alternatives_stall = _alternatives_stall(app, window, stalls, min(n_tokens, 256))
    print(json.dumps({
        "gui_alternatives_max_stall_ms": round(alternatives_stall, 1),
        "gui_max_stall_ms": round(stream_stall, 1), "gui_load_max_stall_ms": round(load_stall, 1),
        **_token_figures(token_costs),
    }))  # fmt: skip
    window.close()


def _bench_window(n_tokens: int):
    """Qt and a main window with a data folder of its own, sampling greedy and long."""
    import tempfile

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    app = QApplication([])
    data = Path(tempfile.mkdtemp())
    settings = QSettings(str(data / "s.ini"), QSettings.Format.IniFormat)
    for key, value in {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": n_tokens}.items():
        settings.setValue(f"sampling/{key}", value)
    window = MainWindow(ChatStore(data / "chats.db"), settings)
    window.resize(1100, 720)
    window.show()
    return app, window


def _token_figures(costs: list[float]) -> dict:
    """The window's own time per token: the first 100 against the last 100."""
    first, last = costs[:100], costs[-100:]
    return {
        "gui_tokens": len(costs), "gui_token_ms_first100": round(1000 * sum(first) / len(first), 4),
        "gui_token_ms_last100": round(1000 * sum(last) / len(last), 4),
        "gui_token_cost_ratio": round((sum(last) / len(last)) / (sum(first) / len(first)), 3),
    }  # fmt: skip


def _alternatives_stall(app, window, stalls, n_tokens: int) -> float:
    """The longest stall while four alternatives stream side by side into the window."""
    from dataclasses import replace

    params = replace(_long_reply_params(n_tokens), temperature=0.8, seed=1)
    setattr(window.replies, "params", lambda: params)  # noqa: B010
    window.settings.setValue("loom/alternatives", 4)
    window.replies.send("The history of the number one")
    stalls.start()
    _spin(app, lambda: window.replies.streaming is None)
    return stalls.take()


def _engine_settings():
    from app.ui.worker import EngineSettings

    return EngineSettings()


def _long_reply_params(n_tokens: int):
    from dataclasses import replace

    from app.engine.base import PLAIN_GREEDY

    return replace(PLAIN_GREEDY, max_tokens=n_tokens, ignore_eos=True)


def _endless_book():
    """Speaker names the model never writes, so nothing ends the reply before ``n_tokens``."""
    from app.scaffold import template_from_dict

    return template_from_dict({
        "name": "endless-book", "user_name": "Chapter title", "assistant_name": "Chapter text",
        "preamble": "An endless book. Each chapter goes on and on for many pages.",
    })  # fmt: skip


def _spin(app, done) -> None:
    while not done():
        app.processEvents()
        time.sleep(0.0005)


def _time_token_handler(window) -> list[float]:
    """Wrap the window's token handler to time what the GUI thread spends on each token.

    The wrapper is a method of a QObject on the GUI thread, so Qt still queues the
    worker's signal onto that thread (a plain function would run on the worker's)."""
    from PySide6.QtCore import QObject

    class Timed(QObject):
        def __init__(self) -> None:
            super().__init__(window)
            self.costs: list[float] = []

        def on_token(self, request_id: int, chunk: str) -> None:
            started = time.perf_counter()
            window.replies.on_token(request_id, chunk)
            self.costs.append(time.perf_counter() - started)

    timed = Timed()
    window.worker.token.disconnect(window.replies.on_token)
    window.worker.token.connect(timed.on_token)
    return timed.costs


class _StallMeter:
    """A 5 ms timer on the GUI thread: the longest gap between its ticks, less 5 ms, is the worst stall."""

    def __init__(self, timer_class, clock_class) -> None:
        self.timer = timer_class()
        self.timer.setInterval(5)
        self.clock = clock_class()
        self.worst = 0.0
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.worst = 0.0
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        gap = self.clock.restart()
        self.worst = max(self.worst, gap - 5)

    def take(self) -> float:
        self.timer.stop()
        return max(self.worst, 0.0)


def long_chat_export(n_messages: int) -> dict:
    """A stored chat of ``n_messages`` turns in the export format ``chats import`` reads: varied
    lengths, Markdown and a code block now and then, as a long role-play chat has."""
    messages = []
    for i in range(n_messages):
        text = f"Turn {i}. " + "The caravan moved on through the dunes, and the story went on. " * (1 + i % 6)
        if i % 40 == 1:
            text += f"\n\n**A note**, with a list:\n\n- one\n- two\n\n```python\nprint('turn', {i})\n```\n"
        messages.append({
            "id": i + 1, "parent": i or None, "chosen": True, "position": i,
            "role": "user" if i % 2 == 0 else "assistant", "text": text, "status": "done",
            "created_at": 1_700_000_000.0 + 60 * i,
        })  # fmt: skip
    conversation = {"title": f"A long chat ({n_messages} messages)", "template": "default",
                    "created_at": 1_700_000_000.0, "updated_at": 1_700_000_000.0 + 60 * n_messages,
                    "settings": {}, "model": "", "messages": messages}  # fmt: skip
    return {"format": "basechat.conversations", "version": 2, "conversations": [conversation]}


def long_chat_probe(path: str, n_messages: int, n_tokens: int) -> None:
    """A stored chat of ``n_messages`` opened in the window, a switch to a short chat and back, the
    RSS each open adds, and the longest event-loop stall while a reply streams at its end."""
    import psutil
    from PySide6.QtCore import QElapsedTimer, QEvent, QTimer

    from app.store.export import import_json

    app, window = _bench_window(n_tokens)
    [long_id] = import_json(window.store, long_chat_export(n_messages))
    short_id = window.service.start(window.template, _long_reply_params(n_tokens), "bench")
    window.service.add_user(short_id, "A short chat.")
    window.request_load.emit("bench", path, _engine_settings())
    _spin(app, lambda: bool(window.model_info))
    rss = psutil.Process().memory_info

    def opened(conversation_id: int) -> tuple[float, int]:
        before, started = rss().rss, time.perf_counter()
        window.chats.open(conversation_id)
        app.processEvents()  # the layout and paint of what is shown
        elapsed = time.perf_counter() - started
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # as the event loop does next
        return elapsed, rss().rss - before

    open_s, open_rss = opened(long_id)
    switch_s, _ = opened(short_id)
    again_s, again_rss = opened(long_id)
    send_ms, stall = _stream_stall(app, window, n_tokens, QTimer, QElapsedTimer)
    print(json.dumps({
        "long_chat_messages": n_messages, "long_chat_open_s": round(open_s, 3),
        "long_chat_open_again_s": round(again_s, 3), "long_chat_switch_s": round(switch_s, 3),
        "long_chat_rss_mb": round(open_rss / 2**20, 1), "long_chat_rss_again_mb": round(again_rss / 2**20, 1),
        "long_chat_send_ms": round(send_ms, 1), "long_chat_stream_max_stall_ms": round(stall, 1),
    }))  # fmt: skip
    window.close()


def _stream_stall(app, window, n_tokens: int, timer_class, clock_class) -> tuple[float, float]:
    """The GUI thread's time to send in the open chat (ms), and the longest stall after it while
    a reply of ``n_tokens`` streams at its end and is stored."""
    stalls = _StallMeter(timer_class, clock_class)
    setattr(window.replies, "params", lambda: _long_reply_params(n_tokens))  # noqa: B010 - a long reply
    window.template = _endless_book()
    started = time.perf_counter()
    window.replies.send("And then?")
    send_ms = 1000 * (time.perf_counter() - started)
    stalls.start()
    _spin(app, lambda: window.replies.streaming is None)
    return send_ms, stalls.take()
