"""Helpers shared by the test modules (no test module imports another)."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import Qt

from tests.conftest import ROOT

LONG = 120_000  # ms; generous, a CI machine may be busy
REPO, FILE = "basechat-test/tiny-base-GGUF", "tiny-base.Q8_0.gguf"


def basechat(*args: str, stdin: str | None = None, timeout: float = 120, extra_env: dict | None = None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def assert_one_line_error(result, fragment: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("basechat: error:") and fragment in lines[0]
    assert "Traceback" not in result.stderr


def send(qtbot, win, text: str) -> None:
    qtbot.keyClicks(win.composer.editor, text)
    with qtbot.waitSignal(win.worker.reply_done, timeout=LONG):
        qtbot.keyClick(win.composer.editor, Qt.Key.Key_Return)
    settled(qtbot, win)


def settled(qtbot, win) -> None:
    """The worker's signal is seen at once; the window handles it on its own thread a moment later."""
    idle = lambda: win.replies.streaming is None and win.composer.button.text() == "Send"  # noqa: E731
    qtbot.waitUntil(idle, timeout=LONG)


def hover(widget, inside: bool = True) -> None:
    """The mouse enters (or leaves) ``widget``, as Qt tells it (offscreen has no real pointer)."""
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QEnterEvent
    from PySide6.QtWidgets import QApplication

    point = QPointF(4, 4)
    event = QEnterEvent(point, point, point) if inside else QEvent(QEvent.Type.Leave)
    QApplication.sendEvent(widget, event)


FIRST_TOKEN_CHOICES = dict(temperature=1.0, top_k=40, top_p=1.0, min_p=0.0, seed=3, max_tokens=1, n_probs=5)


def assert_favour_lifts_the_second_choice(
    backend, prompt: list[int], stops: list[str], fresh=lambda: None
) -> None:
    """The model's second choice for a reply's first token, favoured (``SamplingParams.favour``),
    is more than 1.5 times as likely as before, whatever that choice is on this machine. ``fresh``
    runs before each reply (a local engine drops its cache, so both are computed alike)."""
    from dataclasses import replace

    from app.engine.base import SamplingParams

    sampled = SamplingParams(**FIRST_TOKEN_CHOICES)

    def first_choices(params: SamplingParams) -> dict[str, float]:
        fresh()
        done = backend.generate(prompt, params, stops).run()
        return {c.text: c.prob for c in done.probs[0].top}

    before = first_choices(sampled)
    second = list(before)[1]
    after = first_choices(replace(sampled, favour=(second.strip(),)))
    assert second.strip() and after.get(second, 0.0) > 1.5 * before[second], (second, before, after)
