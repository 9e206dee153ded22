"""The engine interface: what the rest of Basechat needs from a text completer.

A backend tokenises text and streams a continuation of a token list. Two
engines implement it as peers: llama.cpp in this process (``llama.py``) and
an inference server over HTTP (``remote.py``); ``factory.open_backend``
chooses between them, so nothing above this layer names either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

# "interrupted": the engine failed mid-reply (a remote server died); the text so far is kept.
FinishReason = Literal["stop", "length", "cancelled", "interrupted"]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; temperature 0 means greedy, so runs repeat exactly."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    max_tokens: int = 256
    seed: int | None = None
    ignore_eos: bool = False  # keep going past end-of-text (benchmarks of long replies)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    ttft_s: float
    tokens_per_s: float
    prompt_eval_s: float
    total_s: float


@dataclass(frozen=True)
class Completion:
    """The reply as shown, and the token ids that spell exactly that text."""

    text: str
    tokens: tuple[int, ...]
    finish_reason: FinishReason
    usage: Usage
    error: str = ""  # why an "interrupted" reply ended, in one line


class Generation:
    """A running generation: iterate it for text chunks; ``result`` is set when it ends.

    An engine builds one from a generator function that takes the generation
    (to read its cancel flag and set ``result``) and yields text chunks.
    ``cancel()`` may be called from any thread: a local engine checks the flag
    before every token; a remote one also registers ``on_cancel`` hooks that
    close its connection, so Stop works even while the server is silent.
    """

    def __init__(self, body: Callable[[Generation], Iterator[str]]) -> None:
        self.cancel_event = threading.Event()
        self.result: Completion | None = None
        self._hooks: list[Callable[[], None]] = []
        self._chunks = body(self)

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def on_cancel(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)
        if self.cancelled:
            hook()

    def cancel(self) -> None:
        self.cancel_event.set()
        for hook in list(self._hooks):
            hook()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def close(self) -> None:
        """Abandon a generation, started or not, and free the engine for the next one."""
        self.cancel()
        for _ in self._chunks:
            pass

    def run(self) -> Completion:
        """Consume the whole stream and return the result."""
        for _ in self._chunks:
            pass
        assert self.result is not None
        return self.result


def one_at_a_time(
    lock: threading.Lock, prompt: list[int], body: Callable[[Generation, list[int]], Iterator[str]]
) -> Generation:
    """Start ``body`` as the engine's only generation: EngineBusy if one runs; the lock is
    released when the stream ends (or is closed)."""
    from app.errors import EngineBusy

    if not prompt:
        raise ValueError("empty prompt")
    if not lock.acquire(blocking=False):
        raise EngineBusy("A reply is already being generated; stop it or wait for it to finish.")

    def locked(gen: Generation) -> Iterator[str]:
        try:
            yield from body(gen, list(prompt))
        finally:
            lock.release()

    return Generation(locked)


@dataclass(frozen=True)
class EngineInfo:
    """What the window and the CLI show about an open engine, local or remote."""

    kind: Literal["local", "remote"]
    name: str  # the model's name as the engine reports it
    device: str  # "CPU", "Metal", "GPU", or the server's kind for a remote engine
    n_ctx: int
    location: str  # the model file's path, or the server's URL
    threads: int | None = None
    instruct: bool = False
    note: str = ""  # a caveat the prompt inspector shows (e.g. estimated token counts)


class Backend(Protocol):
    name: str
    n_ctx: int

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def start_tokens(self) -> list[int]: ...

    def generate(self, prompt: list[int], params: SamplingParams, stop: list[str]) -> Generation: ...

    def describe(self) -> EngineInfo: ...

    def save_state(self) -> None:
        """Keep the KV state of what is cached, so the conversation resumes warm later."""
        ...

    def remember(self, tokens: list[int]) -> None:
        """Evaluate a prefix many prompts share (a frame) and keep its state."""
        ...

    def close(self) -> None: ...
