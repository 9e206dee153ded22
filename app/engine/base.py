"""The engine interface: what the rest of Basechat needs from a text completer.

A backend tokenises text and streams a continuation of a token list. Keeping
this small lets a remote engine be added beside llama.cpp later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

FinishReason = Literal["stop", "length", "cancelled"]


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


@dataclass
class Generation:
    """A running generation: iterate it for text chunks; ``result`` is set when it ends.

    ``cancel()`` may be called from any thread; the engine checks it before
    every token, so it takes effect within one token.
    """

    _chunks: Iterator[str]
    _cancel: threading.Event = field(default_factory=threading.Event)
    result: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

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


class Backend(Protocol):
    name: str
    n_ctx: int

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def start_tokens(self) -> list[int]: ...

    def generate(self, prompt: list[int], params: SamplingParams, stop: list[str]) -> Generation: ...
