"""The engine interface: what the rest of Basechat needs from a text completer.

A backend tokenises text and streams a continuation of a token list. Two
engines implement it as peers: llama.cpp in this process (``llama.py``) and
an inference server over HTTP (``remote.py``); ``factory.open_backend``
chooses between them, so nothing above this layer names either.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal, Protocol

# "interrupted": the engine failed mid-reply (a remote server died); the text so far is kept.
FinishReason = Literal["stop", "length", "cancelled", "interrupted"]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; temperature 0 means greedy, so runs repeat exactly."""

    # The defaults are the "precise" preset (engine/presets.py), chosen by measurement on the tune
    # half for a small base model (docs/eval.md): cooler sampling keeps the names the user gave,
    # penalties over the reply only never push the model off them, DRY stops loops.
    temperature: float = 0.3
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.1
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    penalize_prompt: bool = False  # the repetition penalty and DRY also look back over the prompt
    dry_multiplier: float = 0.8  # DRY, "don't repeat yourself" (0: off)
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = 2048
    xtc_probability: float = 0.0  # XTC, "exclude top choices" (0: off)
    xtc_threshold: float = 0.1
    max_tokens: int = 256
    # A short answer is drawn this many times at once and the likeliest kept (OpenAI's and vLLM's
    # best_of): the model's first draw of a fact is often not its best guess (docs/eval.md).
    best_of: int = 4
    seed: int | None = None
    ignore_eos: bool = False  # keep going past end-of-text (benchmarks of long replies)
    n_probs: int = 0  # record each token's top-N candidates with their probabilities (0: off)
    # The reply does not end before this many tokens (vLLM's min_tokens): set per turn by a request
    # note that asks for a long answer (engine/minlength.py), not a setting of its own.
    min_tokens: int = 0
    # Words the reply's first tokens lean toward (engine/minlength.py): what the user told and is
    # now asked about, from the recall note; set per turn, like min_tokens.
    favour: tuple[str, ...] = ()


# Set for one reply by the conversation (chat.py), never a setting a user chooses or a chat keeps.
SET_PER_TURN = frozenset({"min_tokens", "favour"})

# What every measurement means by greedy: the likeliest token, no penalty, no DRY (runs repeat),
# one draw (alternatives a measurement asks for are not ranked, so their tokens are not scored).
PLAIN_GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0, best_of=1)

ServerKind = Literal["auto", "llama", "openai"]
DEFAULT_READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServerConfig:
    """Where the server is and how to talk to it. ``n_ctx`` overrides what it reports."""

    url: str
    api_key: str | None = None
    kind: ServerKind = "auto"
    read_timeout: float = DEFAULT_READ_TIMEOUT_S
    n_ctx: int | None = None

    def __repr__(self) -> str:  # never print the key, nor a password in the URL
        return f"ServerConfig(url={without_credentials(self.url)!r}, kind={self.kind!r})"


def without_credentials(url: str) -> str:
    """``http://user:key@host:8080/x`` → ``http://host:8080/x``: what messages and logs may show."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    host = authority.rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}{slash}{path}"


@dataclass(frozen=True)
class TokenChoice:
    token: int
    text: str
    prob: float


@dataclass(frozen=True)
class TokenProb:
    """One generated token and the likeliest candidates at its place, as the sampler saw them
    (after top-k, penalties, top-p, min-p and temperature; greedy: after top-k and penalties),
    most likely first. ``chosen.text`` is the part of the reply this token spells."""

    chosen: TokenChoice
    top: tuple[TokenChoice, ...]


@dataclass(frozen=True)
class TokenScore:
    """A token of a scored text: its log-probability under the model given the text before it,
    and the likeliest tokens at its place with theirs (``Backend.score``)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    ttft_s: float
    tokens_per_s: float
    prompt_eval_s: float
    total_s: float
    drafted_tokens: int = 0  # speculative decoding: tokens proposed, and kept by the model
    accepted_tokens: int = 0

    @property
    def acceptance(self) -> float | None:
        """The share of drafted tokens the model kept (None when nothing was drafted)."""
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else None


@dataclass(frozen=True)
class Completion:
    """The reply as shown, and the token ids that spell exactly that text."""

    text: str
    tokens: tuple[int, ...]
    finish_reason: FinishReason
    usage: Usage
    error: str = ""  # why an "interrupted" reply ended, in one line
    probs: tuple[TokenProb, ...] = ()  # with SamplingParams.n_probs: one per token of ``tokens``
    # With SamplingParams.best_of > 1 (alternatives only): the sum of each token's log-probability
    # under the model, with the turn's nudges and before the sampler chain; None where unknown.
    logprob: float | None = None


class Stoppable:
    """What every running generation shares: a cancel flag any thread may set, and hooks.

    ``cancel()`` may be called from any thread: a local engine checks the flag
    before every token; a remote one also registers ``on_cancel`` hooks that
    close its connection, so Stop works even while the server is silent.
    """

    _chunks: Iterator

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self._hooks: list[Callable[[], None]] = []

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


class Generation(Stoppable):
    """A running generation: iterate it for text chunks; ``result`` is set when it ends.

    An engine builds one from a generator function that takes the generation
    (to read its cancel flag and set ``result``) and yields text chunks.
    """

    def __init__(self, body: Callable[[Generation], Iterator[str]]) -> None:
        super().__init__()
        self.result: Completion | None = None
        self._chunks = body(self)

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def run(self) -> Completion:
        """Consume the whole stream and return the result."""
        for _ in self._chunks:
            pass
        assert self.result is not None
        return self.result


class Alternatives(Stoppable):
    """Several continuations of one prompt at once: iterate for ``(index, chunk)`` pairs;
    ``results`` holds one Completion per alternative when it ends. Stop ends all of them."""

    def __init__(self, n: int, body: Callable[[Alternatives], Iterator[tuple[int, str]]]) -> None:
        super().__init__()
        self.n = n
        self.results: list[Completion] = []
        self._chunks = body(self)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return self._chunks

    def run(self) -> list[Completion]:
        for _ in self._chunks:
            pass
        return self.results


def one_after_another(
    generate: Callable[[list[int], SamplingParams, list[str]], Generation],
    prompt: list[int], params: SamplingParams, stop: list[str], n: int,
) -> Alternatives:  # fmt: skip
    """Alternatives for an engine that cannot batch them: each is its own request, seed + i.
    Stop ends the one running and skips the rest."""
    import random

    seed = params.seed if params.seed is not None else random.getrandbits(31)

    def body(alts: Alternatives) -> Iterator[tuple[int, str]]:
        for index in range(n):
            if alts.cancelled:
                break
            generation = generate(prompt, replace(params, seed=seed + index), stop)
            alts.on_cancel(generation.cancel)
            for chunk in generation:
                yield index, chunk
            assert generation.result is not None
            alts.results.append(generation.result)

    return Alternatives(n, body)


LENGTH_WEIGHT = 0.3  # between a sum (favours short replies) and a mean (long ones): tune-half best


def reply_score(completion: Completion) -> float:
    """How likely the model finds a reply, for ranking alternatives: the summed log-probability
    over its length to the power ``LENGTH_WEIGHT`` (beam search's length penalty, as in GNMT).
    An empty or unscored reply ranks last."""
    if completion.logprob is None or not completion.text.strip():
        return float("-inf")
    return completion.logprob / max(len(completion.tokens), 1) ** LENGTH_WEIGHT


def likeliest(alternatives: Alternatives, unwanted: Callable[[str], bool] | None = None) -> Generation:
    """One reply out of ``alternatives``: the likeliest (OpenAI's and vLLM's ``best_of``), before
    any that is ``unwanted`` (an echo of the message: the plan's guard), which is kept only when
    every draw is. While they are written, the text every draw agrees on so far is passed on as it
    grows — whichever draw wins starts with it, so text once shown never changes — and the rest
    of the winner when all have ended. Stop ends all of them and keeps the likeliest so far."""

    def rank(completion: Completion) -> tuple[bool, float]:
        return (not (unwanted and unwanted(completion.text)), reply_score(completion))

    def body(generation: Generation) -> Iterator[str]:
        texts, shown = [""] * alternatives.n, ""
        for index, chunk in alternatives:
            texts[index] += chunk
            agreed = os.path.commonprefix(texts)  # noqa: RUF071 -- characters, not paths, are meant
            if len(agreed) > len(shown):
                yield agreed[len(shown) :]
                shown = agreed
        results = alternatives.results
        best = max(results, key=rank)
        # the first alternative evaluated the prompt; the others found it in cells they share
        usage = replace(best.usage, cached_tokens=results[0].usage.cached_tokens)
        generation.result = replace(best, usage=usage)
        rest = best.text[len(shown) :] if best.text.startswith(shown) else ""
        if rest:
            yield rest

    generation = Generation(body)
    generation.on_cancel(alternatives.cancel)
    return generation


def one_at_a_time(lock: threading.Lock, prompt: list[int], body: Callable, many: int = 0):
    """Start ``body`` as the engine's only generation: EngineBusy if one runs; the lock is
    released when the stream ends (or is closed). ``many``: a number of Alternatives."""
    from app.errors import EngineBusy

    if not prompt:
        raise ValueError("empty prompt")
    if not lock.acquire(blocking=False):
        raise EngineBusy("A reply is already being generated; stop it or wait for it to finish.")

    def locked(gen):
        try:
            yield from body(gen, list(prompt))
        finally:
            lock.release()

    return Alternatives(many, locked) if many else Generation(locked)


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
    state_ram_mb: int = 0  # the most RAM the newest saved KV states may take


class Stale(Protocol):
    """What a background evaluation checks between batches: a ``threading.Event``, or anything
    that says when the work has gone stale (the person typed on)."""

    def is_set(self) -> bool: ...


class Backend(Protocol):
    name: str
    n_ctx: int

    @property
    def can_shift_context(self) -> bool:
        """Whether old turns dropped from the prompt can be shifted out of the cache (llama.cpp in
        this process); if not, the conversation drops them in chunks so the prefix stays cached."""
        ...

    @property
    def can_rank_replies(self) -> bool:
        """Whether alternatives come back with ``Completion.logprob`` (llama.cpp in this process),
        so a short answer can be drawn several times and the likeliest kept."""
        ...

    def tokenize(self, text: str) -> list[int]: ...

    def score(self, tokens: list[int], top: int = 0) -> list[TokenScore]:
        """Each token after the first, with its log-probability given the ones before it (and the
        ``top`` likeliest tokens there): a text's likelihood under the model, an API's ``echo``
        with ``logprobs``. InputError where the engine cannot (a server gives no prompt scores)."""
        ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def start_tokens(self) -> list[int]: ...

    def generate(self, prompt: list[int], params: SamplingParams, stop: list[str]) -> Generation: ...

    def generate_many(
        self, prompt: list[int], params: SamplingParams, stop: list[str], n: int
    ) -> Alternatives:
        """``n`` continuations of one prompt, each with its own seed, stopping on its own."""
        ...

    def describe(self) -> EngineInfo: ...

    def use_draft(self, choice: str, always: bool = False) -> str:
        """Speculative decoding: "off", "lookup" (drafts from the text itself) or a draft model's
        path. Returns a one-line caveat where the engine cannot follow ("" when it does);
        raises ModelLoadError for a draft model it cannot use."""
        ...

    def sampling_caveat(self, params: SamplingParams) -> str:
        """Where this engine samples differently from what ``params`` ask, in one line ("")."""
        ...

    @property
    def draft_mode(self) -> str:
        """ "off", "lookup", "model", or "server" (a remote server drafts as it was started)."""
        ...

    def save_state(self) -> None:
        """Keep the KV state of what is cached, so the conversation resumes warm later."""
        ...

    def remember(self, tokens: list[int]) -> None:
        """Evaluate a prefix many prompts share (a frame) and keep its state."""
        ...

    def continuation_logprobs(self, prompt: list[int], options: list[list[int]]) -> list[float]:
        """The log-probability of each option's tokens following ``prompt`` (who speaks next in a
        group: each member's label), from one evaluation of the prompt, which stays cached for the
        reply. InputError where the engine cannot (a server gives no such scores)."""
        ...

    def prefill(self, tokens: list[int], stale: Stale) -> int:
        """Evaluate ``tokens`` into the cache ahead of a send (type-ahead), stopping between small
        batches once ``stale.is_set()``; how many were evaluated (0: busy, or nothing to do)."""
        ...

    def close(self) -> None: ...
