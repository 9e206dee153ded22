"""Turns at the one loaded model when the window and its server share it: an asker waits for the
other to finish (the engine on its own refuses a second generation outright, EngineBusy), and may
give up while waiting (Stop in the window, a client that leaves)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from app.errors import BasechatError

_CHECK_EVERY_S = 0.1  # how soon a waiting asker notices it has given up


class GaveUp(BasechatError):
    """The asker stopped waiting before its turn came."""


class Turns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holder = ""  # who has the model now ("" when nobody)
        self.waiting = 0  # askers waiting for it

    @contextlib.contextmanager
    def taken(
        self,
        who: str,
        waiting: Callable[[str], None] | None = None,
        given_up: threading.Event | None = None,
    ) -> Iterator[None]:
        """Hold the model as ``who``; ``waiting(holder)`` is called once when someone else has it;
        GaveUp when ``given_up`` is set before the turn comes."""
        if not self._lock.acquire(blocking=False):
            if waiting is not None:
                waiting(self.holder or "another request")
            self._wait(given_up)
        self.holder = who
        try:
            yield
        finally:
            self.holder = ""
            self._lock.release()

    @contextlib.contextmanager
    def if_free(self, who: str, within_s: float = 0) -> Iterator[bool]:
        """Hold the model as ``who`` only when nobody has it, or it comes free within ``within_s``
        (work that can be skipped, such as type-ahead, or freeing the model when the window
        closes); yields whether it was free. Whoever then waits can see ``waiting``."""
        if not self._lock.acquire(timeout=within_s):
            yield False
            return
        self.holder = who
        try:
            yield True
        finally:
            self.holder = ""
            self._lock.release()

    def _wait(self, given_up: threading.Event | None) -> None:
        self.waiting += 1
        try:
            while not self._lock.acquire(timeout=_CHECK_EVERY_S):
                if given_up is not None and given_up.is_set():
                    raise GaveUp("Stopped while waiting for the model.")
        finally:
            self.waiting -= 1
