"""Measurements that need a process of their own; each prints one JSON line.

Run by ``app.measure.bench`` in a child process, so start-up time and peak memory are
those of a fresh Basechat, not of the benchmark around it.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path


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


def memory_probe(path: str, n_tokens: int) -> None:
    """Peak RSS while a long reply is generated, against weights plus KV cache."""
    from app.engine.llama import LlamaEngine
    from app.measure.bench import COUNTING, GREEDY, kv_bytes_for

    with LlamaEngine(Path(path)) as engine:
        prompt = engine.start_tokens() + engine.tokenize(COUNTING)
        engine.generate(prompt, GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": n_tokens}), []).run()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        expected = Path(path).stat().st_size + kv_bytes_for(Path(path), engine.n_ctx)
    mb = 1024**2
    print(json.dumps({"rss_peak_mb": round(peak / mb, 1), "model_plus_kv_mb": round(expected / mb, 1),
                      "rss_overhead_mb": round((peak - expected) / mb, 1)}))  # fmt: skip


def gui_probe(path: str, n_tokens: int) -> None:
    """Longest event-loop stall while a model loads and a long reply streams into the window,
    and the window's own time per token over the last 100 tokens vs the first 100."""
    import tempfile

    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
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
    stalls = _StallMeter(QTimer, QElapsedTimer)
    token_costs = _time_token_handler(window)
    stalls.start()
    window.request_load.emit("bench", path, _engine_settings())
    _spin(app, lambda: bool(window.model_info))
    load_stall = stalls.take()
    setattr(window, "_params", lambda: _long_reply_params(n_tokens))  # noqa: B010 - a long reply
    window.template = _endless_book()
    window.send("The history of the number zero")
    stalls.start()
    _spin(app, lambda: window.streaming is None)
    stream_stall = stalls.take()
    first, last = token_costs[:100], token_costs[-100:]
    alternatives_stall = _alternatives_stall(app, window, stalls, min(n_tokens, 256))
    print(json.dumps({
        "gui_alternatives_max_stall_ms": round(alternatives_stall, 1),
        "gui_max_stall_ms": round(stream_stall, 1), "gui_load_max_stall_ms": round(load_stall, 1),
        "gui_tokens": len(token_costs), "gui_token_ms_first100": round(1000 * sum(first) / len(first), 4),
        "gui_token_ms_last100": round(1000 * sum(last) / len(last), 4),
        "gui_token_cost_ratio": round((sum(last) / len(last)) / (sum(first) / len(first)), 3),
    }))  # fmt: skip
    window.close()


def _alternatives_stall(app, window, stalls, n_tokens: int) -> float:
    """The longest stall while four alternatives stream side by side into the window."""
    from dataclasses import replace

    params = replace(_long_reply_params(n_tokens), temperature=0.8, seed=1)
    setattr(window, "_params", lambda: params)  # noqa: B010
    window.settings.setValue("loom/alternatives", 4)
    window.send("The history of the number one")
    stalls.start()
    _spin(app, lambda: window.streaming is None)
    return stalls.take()


def _engine_settings():
    from app.ui.worker import EngineSettings

    return EngineSettings()


def _long_reply_params(n_tokens: int):
    from app.engine.base import SamplingParams

    return SamplingParams(temperature=0.0, repeat_penalty=1.0, max_tokens=n_tokens, ignore_eos=True)


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
            window._token(request_id, chunk)
            self.costs.append(time.perf_counter() - started)

    timed = Timed()
    window.worker.token.disconnect(window._token)
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


def resume_probe(path: str, state_dir: str, turns: int) -> None:
    """Time to first token for a new message in a long chat, in a fresh process: with the
    saved KV state in ``state_dir`` (empty string: none, the cold path)."""
    from app.measure.bench import first_token_after_restart

    print(json.dumps({"ttft_s": first_token_after_restart(Path(path), state_dir or None, turns)}))
