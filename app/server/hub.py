"""The one loaded model every request shares: a turn at a time, each generation in a worker
thread, and a client that leaves ends its generation (the engine stops between tokens and is free
again for the next request)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio

from app.engine.base import Backend, SamplingParams
from app.engine.turns import Turns

_END = object()


@dataclass
class _Failed:
    error: BaseException


@dataclass
class Hub:
    """What the routes share: the engine and its model's id, the default template and sampling,
    the API key (None: none asked), and counters the status line shows."""

    engine: Backend
    model_id: str
    template: str
    params: SamplingParams
    api_key: str | None = None
    turns: Turns | None = None  # set when the window shares the model: its replies take turns too
    keeper: Any = None  # a ChatKeeper with --keep-chats: chats kept in the history
    served: int = 0
    waiting: int = 0
    current: Any = None  # the stream being generated, for Kobold's abort
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    _producers: set = field(default_factory=set)

    async def run(self, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread, when it is this request's turn."""
        async with self._turn():
            return await anyio.to_thread.run_sync(self.in_turn, work)

    def in_turn(self, work: Callable[[], Any], given_up: threading.Event | None = None) -> Any:
        """In a worker thread: ``work()`` once the model is free of the window's reply."""
        if self.turns is None:
            return work()
        with self.turns.taken("a request to the server", given_up=given_up):
            return work()

    async def stream(self, start: Callable[[], Any]) -> AsyncIterator[Any]:
        """The items of ``start()`` (a stream with ``cancel``) as they come. A task of its own
        holds the turn and reads the stream in a worker thread into a queue; this generator only
        reads the queue, so a client that leaves (the generator closed, at once or later by the
        garbage collector) needs no await to stop the engine: it sets a flag and cancels."""
        queue: asyncio.Queue = asyncio.Queue()
        left = threading.Event()
        producer = asyncio.create_task(self._produce(start, queue, left))
        self._producers.add(producer)
        producer.add_done_callback(self._producers.discard)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            left.set()
            current = self.current
            if current is not None and not producer.done():
                current.cancel()

    async def _produce(self, start: Callable[[], Any], queue: asyncio.Queue, left: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        async with self._turn():
            try:
                pump = partial(_pump, start, loop, queue, left, self)
                await anyio.to_thread.run_sync(self.in_turn, pump, left)
            except BaseException as error:  # to the request that asked, in its own task
                queue.put_nowait(_Failed(error))
            finally:
                self.current = None
                queue.put_nowait(_END)

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


def _pump(start: Callable[[], Any], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue,
          left: threading.Event, hub: Hub) -> None:  # fmt: skip
    """In a worker thread: start the stream and pass its items to the queue, until it ends or the
    client leaves (then it is cancelled and read to its end, so the engine is free)."""
    stream = start()
    hub.current = stream
    for item in stream:
        if left.is_set():
            stream.cancel()
            continue
        loop.call_soon_threadsafe(queue.put_nowait, item)
    if left.is_set():
        stream.cancel()


async def first_then_rest(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Wait for the first item before a response starts, so a request the engine refuses (a
    prompt too long) gets its error status instead of a stream broken after its headers."""
    try:
        first = await items.__anext__()
    except StopAsyncIteration:
        first = _END

    async def chained() -> AsyncIterator[Any]:
        if first is _END:
            return
        yield first
        async for item in items:
            yield item

    return chained()
