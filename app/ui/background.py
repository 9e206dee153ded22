"""Running a function off the GUI thread and getting its result back on it.

Like Anki's ``QueryOp(op, success).run_in_background()``: ``run_in_background(op,
on_done, on_error)``; both callbacks run on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.errors import BasechatError

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Lives on the GUI thread; its slots are methods, so Qt queues the calls onto that thread
    (a lambda connected to a signal from another thread would run on that other thread)."""

    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object)

    def __init__(self, on_done, on_error, on_progress, owner: QObject | None) -> None:
        super().__init__()
        self.on_done, self.on_error, self.on_progress = on_done, on_error, on_progress
        self.owner_gone = False
        if owner is not None:
            owner.destroyed.connect(self._owner_destroyed)
        self.done.connect(self._done)
        self.failed.connect(self._failed)
        self.progress.connect(self._progress)

    def _owner_destroyed(self) -> None:
        """The widget the answer was for is gone (a window closed mid-task): drop the answer."""
        self.owner_gone = True

    def _done(self, result) -> None:
        _running.discard(self)
        if not self.owner_gone:
            self.on_done(result)

    def _failed(self, message: str) -> None:
        _running.discard(self)
        if not self.owner_gone:
            self.on_error(message)

    def _progress(self, value) -> None:
        if self.on_progress and not self.owner_gone:
            self.on_progress(value)


class _Task(QRunnable):
    def __init__(self, op: Callable, relay: _Relay) -> None:
        super().__init__()
        self.op, self.relay = op, relay

    def run(self) -> None:
        try:
            result = self.op(self.relay.progress.emit)
        except BasechatError as exc:
            self.relay.failed.emit(str(exc))
        except Exception as exc:
            log.exception("background task failed")
            self.relay.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.relay.done.emit(result)


_running: set[_Relay] = set()


def run_in_background(
    op: Callable[[Callable[[object], None]], object],
    on_done: Callable[[object], None],
    on_error: Callable[[str], None],
    on_progress: Callable[[object], None] | None = None,
    owner: QObject | None = None,
) -> None:
    """``op(report)`` runs on a pool thread; ``report(value)`` sends progress to the GUI thread.
    ``owner``: the widget the callbacks touch; once it is destroyed they are not called."""
    relay = _Relay(on_done, on_error, on_progress, owner)
    _running.add(relay)
    QThreadPool.globalInstance().start(_Task(op, relay))
