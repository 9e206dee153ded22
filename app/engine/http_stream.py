"""Talking to an inference server over HTTP: a streamed reply read as server-sent events on a
helper thread, within an idle and an overall deadline, and the one-line messages for what a
server can do wrong. ``remote.py`` speaks the two dialects on top of this."""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2

from app.engine.base import Generation
from app.errors import BasechatError, ContextOverflow, RemoteError

log = logging.getLogger(__name__)


def redacted(text: str, hidden: tuple[str, ...]) -> str:
    """A server's words with the API key or password taken out, should it echo them back."""
    for word in hidden:
        text = text.replace(word, "***")
    return text


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class Deadlines:
    """How long a reply may take: ``idle_s`` without an event (a byte a second, or keep-alive
    comments, do not count), ``total_s`` in all."""

    idle_s: float
    total_s: float

    def start(self) -> _Clock:
        return _Clock(self, time.monotonic())


class _Clock:
    def __init__(self, deadlines: Deadlines, started: float) -> None:
        self.deadlines, self.started, self.last_event = deadlines, started, started

    def saw_event(self) -> None:
        self.last_event = time.monotonic()

    def wait(self) -> float:
        """Seconds until the nearer deadline (at least a hair, so the queue is still looked at)."""
        ends = min(self.last_event + self.deadlines.idle_s, self.started + self.deadlines.total_s)
        return max(ends - time.monotonic(), 0.001)

    def why(self, url: str) -> str:
        if time.monotonic() - self.started >= self.deadlines.total_s:
            waited = f"took more than {self.deadlines.total_s:.0f} s for one reply"
        else:
            waited = f"sent nothing new for {self.deadlines.idle_s:.0f} s"
        return f"The server at {url} {waited}; the reply so far is kept."


class EventStream:
    """JSON events from a server-sent-events response, read on a helper thread.

    The consumer waits on a queue that the reader, Stop and the end of the
    stream all feed, so no wait outlives a cancel. On cancel the socket is
    shut down: the server sees the client leave and frees its slot.
    """

    def __init__(self, client: httpx2.Client, url: str, path: str, body: dict, gen: Generation,
                 deadlines: Deadlines, hidden: tuple[str, ...] = ()) -> None:  # fmt: skip
        self._client, self._url, self._path, self._body = client, url, path, body
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._socket: socket.socket | None = None
        self._deadlines, self._hidden = deadlines, hidden
        gen.on_cancel(self._cancel)

    def __iter__(self) -> Iterator[Any]:
        threading.Thread(target=self._read, name="basechat-remote-read", daemon=True).start()
        clock = self._deadlines.start()
        try:
            while True:
                kind, value = self._next(clock)
                if kind == "event":
                    clock.saw_event()
                    yield value
                elif kind == "end":
                    return
                elif kind == "cancel":
                    raise Cancelled
                else:
                    raise value
        finally:
            self._shutdown()

    def _next(self, clock: _Clock) -> tuple[str, Any]:
        """The next thing the reader, Stop or the end put in the queue, within both deadlines."""
        try:
            return self._queue.get(timeout=clock.wait())
        except queue.Empty:
            raise RemoteError(clock.why(self._url)) from None

    def _cancel(self) -> None:
        self._queue.put(("cancel", None))

    def _shutdown(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the server
                sock.shutdown(socket.SHUT_RDWR)

    def _read(self) -> None:
        try:
            with self._client.sse(self._path, method="POST", json=self._body) as source:
                response = source.response
                if response.status_code != 200:
                    response.read()
                    raise_for_status(response, self._url, self._hidden)
                self._socket = _socket_of(response)
                self._forward(source)
            self._queue.put(("end", None))
        except BasechatError as exc:  # an HTTP error status, a malformed event
            self._queue.put(("error", exc))
        except httpx2.HTTPError as exc:
            self._queue.put(("error", RemoteError(transport_message(exc, self._url))))
        except Exception as exc:  # the consumer must hear of every end, or it would wait forever
            log.exception("remote stream failed")
            self._queue.put(("error", RemoteError(f"The stream from {self._url} failed: {exc}")))

    def _forward(self, source) -> None:
        for event in source:
            if event.data.strip() == "[DONE]":
                return
            try:
                self._queue.put(("event", event.json()))
            except (ValueError, RecursionError):
                shown = redacted(event.data[:60], self._hidden)
                raise RemoteError(f"{self._url} sent a malformed event: {shown!r}") from None


def _socket_of(response: httpx2.Response) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    return stream.get_extra_info("socket") if stream is not None else None


def raise_for_status(response: httpx2.Response, url: str, hidden: tuple[str, ...] = ()) -> None:
    code = response.status_code
    if code < 400:
        return
    detail = redacted(_error_detail(response), hidden)
    if code in (401, 403):
        raise RemoteError(f"{url} refused the API key (HTTP {code}); give one with --api-key-env NAME.")
    if "exceed_context" in detail or "context size" in detail.lower() or "context length" in detail.lower():
        raise ContextOverflow(f"The prompt does not fit the server's context: {detail}")
    if code == 404 and "model" in detail.lower():
        raise RemoteError(f"{url} does not know that model: {detail}")
    if code == 404:
        raise RemoteError(f"{url} has no {response.request.url.path} (HTTP 404); is it the right server?")
    raise RemoteError(f"{url} answered HTTP {code}: {detail or response.reason_phrase}")


def _error_detail(response: httpx2.Response) -> str:
    """What the server says went wrong, as ``server_text``: it reaches a terminal and the window."""
    try:
        data = response.json()
    except ValueError:
        return server_text(response.text)
    error = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
    if isinstance(error, dict):
        kind, message = error.get("type", ""), error.get("message", "")
        return server_text(f"{message} ({kind})" if kind and message else (message or kind or error))
    return server_text(error)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def server_text(value: object, limit: int = 300) -> str:
    """Anything a server sends that is shown to the person, as one line: control characters (an
    escape sequence could retitle or recolour a terminal) become spaces, and it is cut to
    ``limit`` characters (a 300 KB error page is not a message)."""
    text = _UNPRINTABLE.sub(" ", str(value)[: limit * 4]).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_of(response: httpx2.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RemoteError(
            f"{url} answered {response.request.url.path} with something that is not JSON."
        ) from None


def transport_message(exc: httpx2.HTTPError, url: str) -> str:
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
        return f"Cannot reach the server at {url}: is it running?"
    if isinstance(exc, httpx2.ReadTimeout):
        return f"The server at {url} sent nothing for too long (read timeout); the reply so far is kept."
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
        return f"The server at {url} closed the connection mid-reply; the reply so far is kept."
    return f"Talking to {url} failed: {exc}"
