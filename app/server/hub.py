"""The one loaded model every request shares: a turn at a time, in worker threads, and a client
that leaves ends its generation (the engine stops between tokens and is free again)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from app.engine.base import Backend, SamplingParams

_END = object()


@dataclass
class Hub:
    """What the routes share: the engine and its model's id, the default template and sampling,
    the API key (None: none asked), and counters the status line shows."""

    engine: Backend
    model_id: str
    template: str
    params: SamplingParams
    api_key: str | None = None
    served: int = 0
    waiting: int = 0
    current: Any = None  # the stream being generated, for Kobold's abort
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread, when it is this request's turn."""
        async with self._turn():
            return await anyio.to_thread.run_sync(work)

    async def stream(self, start: Callable[[], Any]) -> AsyncIterator[Any]:
        """The items of ``start()`` (a stream with ``cancel``), each read in a worker thread, in
        this request's turn. Closed early (the client left, or an abort), the stream is cancelled
        and read to its end, shielded, so the engine is free for the next request."""
        async with self._turn():
            stream = await anyio.to_thread.run_sync(start)
            self.current, items = stream, iter(stream)
            try:
                while (item := await anyio.to_thread.run_sync(next, items, _END)) is not _END:
                    yield item
            finally:
                self.current = None
                stream.cancel()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_drain, items)

    def abort(self) -> bool:
        """Stop the generation running now (KoboldCpp's abort); False when none runs."""
        current = self.current
        if current is None:
            return False
        current.cancel()
        return True

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self.turn.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.served += 1
            self.turn.release()


def _drain(items: Iterable) -> None:
    for _ in items:
        pass
