"""Stop strings with hold-back.

Text that could be the start of a stop string is held until the next token
says whether it is one. Nothing shown is ever taken back, and the work per
token is bounded by the longest stop string, not by the reply's length.
Letters A–Z match in either case: a model that writes "user:" or "(The
assistant" on a new line is writing the transcript, not its reply.
"""

from __future__ import annotations

import string

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # keeps every length


class StopScanner:
    """Feed decoded text in; get back what is safe to show, and whether a stop was hit."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s.translate(_FOLD) for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return the text now safe to show; after a stop, the rest is discarded."""
        if self.stopped:
            return ""
        self._pending += text
        cut = self._earliest_stop()
        if cut is not None:
            self.stopped = True
            safe, self._pending = self._pending[:cut], ""
            return safe
        keep = self._held_suffix_length()
        safe = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(safe) :]
        return safe

    def flush(self) -> str:
        """At the end of generation a held prefix was not a stop after all: show it."""
        rest, self._pending = ("" if self.stopped else self._pending), ""
        return rest

    @property
    def pending(self) -> str:
        return self._pending

    def _earliest_stop(self) -> int | None:
        folded = self._pending.translate(_FOLD)
        found = [i for i in (folded.find(s) for s in self._stops) if i != -1]
        return min(found) if found else None

    def _held_suffix_length(self) -> int:
        """Length of the longest tail of the pending text that begins some stop string."""
        best, folded = 0, self._pending.translate(_FOLD)
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(folded)), best, -1):
                if folded.endswith(stop[:length]):
                    best = length
                    break
        return best
