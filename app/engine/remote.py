"""The remote engine: a model served by an existing inference server, over HTTP.

Two dialects, detected from the URL (``kind="auto"``) or named:

- ``llama``: llama.cpp's ``llama-server`` native API. Prompts go as token ids
  (typed text such as ``<eos>`` stays text, and the prefix the server keeps
  with ``cache_prompt`` is the same one ``app/chat.py`` builds locally); the
  reply's token ids come back with the stream.
- ``openai``: ``POST /v1/completions`` with a text prompt, for vLLM,
  llama-cpp-python's server, KoboldCpp, LM Studio and the rest. Token counts
  come from the server's tokenizer endpoint where it has one, else they are
  estimated conservatively (``EngineInfo.note`` says so).

Basechat's own stop scanning and hold-back run on the streamed text in both,
so a half-written speaker label is never shown whatever the server does.
The HTTP client is ``httpx2``, which huggingface_hub already brings, with
server-sent events built in. Events are read on a helper thread so that
Stop, a stalled server and a dead one all end the wait at once; Stop also
shuts the socket down, which makes the server cancel its task.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2

from app.engine.base import (
    Alternatives,
    EngineInfo,
    Generation,
    SamplingParams,
    ServerConfig,
    TokenChoice,
    one_after_another,
    one_at_a_time,
    without_credentials,
)
from app.engine.http_stream import (
    Cancelled,
    Deadlines,
    EventStream,
    json_of,
    raise_for_status,
    server_text,
    transport_message,
)
from app.engine.minlength import FAVOUR, FAVOUR_SPAN, favoured_tokens, remote_bans
from app.engine.reply import ReplyState
from app.engine.sampling import DRY_BREAKERS
from app.errors import InputError, RemoteError

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5.0
SECONDS_PER_TOKEN = 2.0  # the overall deadline allows this much for every token asked for
_TOKEN_SETS_KEPT = 64  # token sets worked out with the server's tokenizer, kept per engine
ESTIMATED_CHARS_PER_TOKEN = 2  # conservative: English runs about 4 characters a token


def normalise_url(url: str) -> str:
    """``host:port`` or a full URL → ``http://host:port`` without a trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    shown = without_credentials(url)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise RemoteError(f"'{shown}' is not a server address (expected http://host:port).") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise RemoteError(f"'{shown}' is not a server address (expected http://host:port).")
    return url.rstrip("/")


def _credentials(url: str) -> tuple[str, str]:
    """The user name and password written into a URL, if any."""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


class RemoteEngine:
    """A Backend over HTTP. One generation at a time, like the local engine."""

    name = "remote"
    can_shift_context = False  # a server's cache is its own: drop old turns in chunks instead
    can_rank_replies = False  # alternatives are requests one after another: best_of would cost n×

    def __init__(self, config: ServerConfig) -> None:
        given = normalise_url(config.url)
        self.url = without_credentials(given)  # what messages, the log and the window show
        self.config = config
        user, password = _credentials(given)
        basic = base64.b64encode(f"{user}:{password}".encode()).decode() if user or password else ""
        self._hidden = tuple(word for word in (config.api_key, password, basic) if word)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        timeout = httpx2.Timeout(connect=CONNECT_TIMEOUT_S, read=config.read_timeout, write=30, pool=5)
        # trust_env off: only the configured URL is contacted, never a proxy from the environment.
        self._client = httpx2.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
            auth=httpx2.BasicAuth(user, password) if basic and not config.api_key else None,
        )
        self._lock = threading.Lock()
        self.last_timings: dict = {}  # the server's own figures for the last reply (llama-server)
        self.cache_prompt = True  # off only to measure a cold prompt (llama-server keeps old ones in RAM)
        self.model = ""
        self.kind, self.model, self.n_ctx, self._tokenizer = self._probe()
        self._token_sets: dict[tuple[str, ...], tuple[int, ...]] = {}
        # llama-cpp-python's /extras/tokenize puts BOS before every text; counted once, not per piece.
        self._added_prefix = self._tokenize_with(self._tokenizer, "") if self._tokenizer == "extras" else []

    # -- connecting ----------------------------------------------------------------

    def _probe(self) -> tuple[str, str, int, str]:
        """Which dialect the server speaks, its model, context size and tokenizer endpoint."""
        kind = self.config.kind
        if kind in ("auto", "llama"):
            props = self._get_json("/props", missing_ok=kind == "auto")
            settings = props.get("default_generation_settings") if isinstance(props, dict) else None
            if isinstance(settings, dict):
                n_ctx = _positive_int(settings.get("n_ctx"))
                model = server_text(props.get("model_alias") or props.get("model_path") or "", 120)
                return "llama", model.rsplit("/", 1)[-1] or "llama-server", self._context(n_ctx), "llama"
            if kind == "llama":
                raise RemoteError(f"{self.url} does not speak llama-server's API (no /props).")
        return self._probe_openai()

    def _probe_openai(self) -> tuple[str, str, int, str]:
        models = self._get_json("/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise RemoteError(f"{self.url} lists no models at /v1/models; is it a completions server?")
        first = data[0]
        n_ctx = _positive_int(first.get("max_model_len") or first.get("context_length"))
        return (
            "openai",
            server_text(first.get("id", "model"), 120),
            self._context(n_ctx),
            self._find_tokenizer(),
        )

    def _context(self, reported: int) -> int:
        n_ctx = self.config.n_ctx or reported
        if not n_ctx:
            log.info("%s does not report its context size; assuming 2048", self.url)
        return n_ctx or 2048

    def _find_tokenizer(self) -> str:
        """vLLM has /tokenize; llama-cpp-python's server /extras/tokenize; others none."""
        for dialect in ("vllm", "extras"):
            try:
                self._tokenize_with(dialect, "Hello")
                return dialect
            except RemoteError:
                continue
        return ""

    def _get_json(self, path: str, missing_ok: bool = False) -> Any:
        response = self._request("GET", path)
        if response.status_code == 404 and missing_ok:
            return None
        raise_for_status(response, self.url, self._hidden)
        return json_of(response, self.url)

    def _post_json(self, path: str, body: dict) -> Any:
        response = self._request("POST", path, json=body)
        raise_for_status(response, self.url, self._hidden)
        return json_of(response, self.url)

    def _request(self, method: str, path: str, **kwargs) -> httpx2.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx2.HTTPError as exc:
            raise RemoteError(transport_message(exc, self.url)) from None

    # -- Backend: describing, tokens ---------------------------------------------

    def describe(self) -> EngineInfo:
        note = ""
        if not self._tokenizer:
            note = (
                "The server has no tokenizer endpoint: token counts are estimated"
                f" (1 per {ESTIMATED_CHARS_PER_TOKEN} characters)."
            )
        device = "llama-server" if self.kind == "llama" else "server"
        name = self.model.rsplit("/", 1)[-1] if self.model.endswith(".gguf") else self.model
        return EngineInfo(
            kind="remote", name=name, device=device, n_ctx=self.n_ctx, location=self.url, note=note
        )

    def score(self, tokens: list[int], top: int = 0) -> list:
        raise InputError("A server does not give the log-probabilities of a prompt's own tokens.")

    def tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        if not self._tokenizer:
            return _estimate_tokens(text)
        tokens = self._tokenize_with(self._tokenizer, text)
        skip = self._added_prefix
        return tokens[len(skip) :] if tokens[: len(skip)] == skip else tokens

    def _tokenize_with(self, dialect: str, text: str, add_special: bool = False) -> list[int]:
        """``dialect``: llama (llama-server), vllm, or extras (llama-cpp-python's server)."""
        if dialect == "llama":
            body: dict = {"content": text, "add_special": add_special, "parse_special": False}
        elif dialect == "vllm":
            body = {"model": self.model, "prompt": text, "add_special_tokens": add_special}
        else:
            body = {"input": text}
        path = _TOKENIZE_PATHS[dialect]
        tokens = self._post_json(path, body).get("tokens")
        if not isinstance(tokens, list):
            raise RemoteError(f"{self.url}{path} answered without a token list.")
        return [int(t["id"] if isinstance(t, dict) else t) for t in tokens]

    def detokenize(self, tokens: list[int]) -> str:
        if not tokens:
            return ""
        if not self._tokenizer:
            return _estimated_text(tokens)
        path = _TOKENIZE_PATHS[self._tokenizer].replace("tokenize", "detokenize")
        body: dict = {"tokens": tokens, **({"model": self.model} if self._tokenizer == "vllm" else {})}
        reply = self._post_json(path, body)
        for field in ("content", "text", "prompt"):
            if isinstance(reply.get(field), str):
                return reply[field]
        raise RemoteError(f"{self.url}{path} answered without text.")

    def start_tokens(self) -> list[int]:
        """Token-id prompts get no BOS from llama-server, so Basechat adds the model's own;
        text prompts (the openai dialect) get whatever the server adds."""
        if self.kind != "llama":
            return []
        return self._tokenize_with("llama", "", add_special=True)

    def save_state(self) -> None:
        """llama-server keeps its own prompt cache (in the slot and in RAM): nothing to do."""

    def remember(self, tokens: list[int]) -> None:
        """The server's prompt cache finds shared prefixes by itself."""

    def continuation_logprobs(self, prompt: list[int], options: list[list[int]]) -> list[float]:
        """A completion API scores what it writes, not a text it is given to follow a prompt."""
        raise InputError("A server cannot say who speaks next; the group takes turns in order.")

    def prefill(self, tokens: list[int], stale) -> int:
        """A server evaluates a prompt only when asked for a reply: nothing ahead of it."""
        return 0

    def close(self) -> None:
        self._client.close()

    # -- drafting --------------------------------------------------------------

    draft_mode = "server"

    def sampling_caveat(self, params: SamplingParams) -> str:
        return _sampling_caveat(params, self.kind)

    def use_draft(self, choice: str, always: bool = False) -> str:
        """A server drafts as it was started, whatever a client asks (llama-server turned its
        per-request ``speculative.*`` fields off). Returns the one line that says so."""
        if self.kind != "llama":
            return "An OpenAI-compatible server decides on drafting itself; Basechat cannot ask it to."
        if self._server_drafts():
            return "This llama-server drafts as it was started; Basechat cannot change that from here."
        if choice == "off":
            return ""
        return ("This llama-server does not draft: start it with --spec-type ngram-simple (from the text) "
                "or --model-draft FILE (a draft model); a client cannot ask for it.")  # fmt: skip

    def _server_drafts(self) -> bool:
        """Whether the server's slots say they can speculate (False when /slots is turned off)."""
        try:
            slots = self._get_json("/slots", missing_ok=True)
        except RemoteError:
            return False
        return isinstance(slots, list) and any(isinstance(s, dict) and s.get("speculative") for s in slots)

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- Backend: generation -----------------------------------------------------

    def generate_many(
        self, prompt: list[int], params: SamplingParams, stop: list[str], n: int
    ) -> Alternatives:
        """A server decodes alternatives one request after another (its slots are its own business)."""
        return one_after_another(self.generate, prompt, params, stop, n)

    def generate(self, prompt: list[int], params: SamplingParams, stop: list[str]) -> Generation:
        return one_at_a_time(self._lock, prompt, lambda gen, tokens: self._stream(gen, tokens, params, stop))

    def _stream(self, gen: Generation, prompt: list[int], params, stop: list[str]) -> Iterator[str]:
        """A reply held to a minimum, or leaning toward favoured words, is two requests: the first
        with the minimum's bans or the words' lift, the second going on from it without them — a
        server's bias holds for a whole request, the local engine's only while it is needed."""
        rest = lambda state: self._rest_body(prompt, replace(params, favour=()), stop, state)  # noqa: E731
        if self.kind == "llama" and params.min_tokens > 0:
            first = self._native_body(prompt, replace(params, max_tokens=params.min_tokens), stop)
            bans = [[t, False] for t in self._bans(stop)]
            first |= {"ignore_eos": True, "logit_bias": first.get("logit_bias", []) + bans}
            return self._run(gen, prompt, stop, "/completion", first, params.max_tokens, rest)
        if self.kind == "llama" and params.favour:
            span = min(FAVOUR_SPAN, params.max_tokens)
            first = self._native_body(prompt, replace(params, max_tokens=span), stop)
            said = frozenset(self._favoured(params.favour))
            until = lambda state: not said.isdisjoint(state.tokens)  # noqa: E731
            return self._run(gen, prompt, stop, "/completion", first, params.max_tokens, rest, until)
        if self.kind == "llama":
            body = self._native_body(prompt, params, stop)
            return self._run(gen, prompt, stop, "/completion", body, params.max_tokens)
        body = self._openai_body(self.detokenize(prompt), params, stop)
        return self._run(gen, prompt, stop, "/v1/completions", body, params.max_tokens)

    def _deadlines(self, max_tokens: int) -> Deadlines:
        """Idle: the configured read timeout. Overall: that, plus two seconds a token asked for (a
        server slower than half a token a second is not answering)."""
        idle = self.config.read_timeout
        return Deadlines(idle, idle + SECONDS_PER_TOKEN * max_tokens)

    def _native_body(self, prompt: list[int], params: SamplingParams, stop: list[str]) -> dict:
        body = {
            "prompt": prompt, "stream": True, "cache_prompt": self.cache_prompt, "return_tokens": True,
            "n_predict": params.max_tokens, "stop": stop, "ignore_eos": bool(params.ignore_eos),
            "samplers": _chain_order(params),
        }  # fmt: skip
        if params.n_probs:  # sampled: what the chain kept; greedy: the softmax of the logits
            body |= {"n_probs": params.n_probs, "post_sampling_probs": params.temperature > 0}
        if params.favour:  # for this request only (see _stream)
            body["logit_bias"] = [[t, FAVOUR] for t in self._favoured(params.favour)]
        return body | _sampling(params)

    def _favoured(self, words: tuple[str, ...]) -> tuple[int, ...]:
        return self._tokens_of(("favour", *words), lambda: favoured_tokens(words, self.tokenize))

    def _bans(self, stop: list[str]) -> tuple[int, ...]:
        """The tokens a reply below its minimum may not take (about twenty round trips a set)."""
        return self._tokens_of(("bans", *stop), lambda: remote_bans(stop, self.tokenize))

    def _tokens_of(self, key: tuple[str, ...], work: Callable[[], tuple[int, ...]]) -> tuple[int, ...]:
        """A token set worked out with the server's tokenizer once per key (each spelling is a
        round trip; a reply held to a minimum builds its body twice), kept for the last few keys."""
        if key not in self._token_sets:
            if len(self._token_sets) >= _TOKEN_SETS_KEPT:
                self._token_sets.clear()
            self._token_sets[key] = work()
        return self._token_sets[key]

    def _rest_body(
        self, prompt: list[int], params: SamplingParams, stop: list[str], state: ReplyState
    ) -> dict | None:
        """A reply held to a minimum goes on in a second request from where the first (which could
        not end) stopped at the minimum, as a plain one; None when it already ended."""
        if state.finish != "length" or state.scanner.stopped or state.generated >= params.max_tokens:
            return None
        left = replace(params, max_tokens=params.max_tokens - state.generated)
        return self._native_body(prompt + state.all_tokens, left, stop)

    def _openai_body(self, prompt: str, params: SamplingParams, stop: list[str]) -> dict:
        body = {"model": self.model, "prompt": prompt, "stream": True, "max_tokens": params.max_tokens}
        # OpenAI allows four stop strings; Basechat's own scanner catches the rest.
        return body | {"stop": stop[:4] or None} | _sampling(params)

    def _run(
        self, gen: Generation, prompt: list[int], stop: list[str], path: str, body: dict, max_tokens: int,
        then: Callable[[ReplyState], dict | None] | None = None,
        until: Callable[[ReplyState], bool] | None = None,
    ) -> Iterator[str]:  # fmt: skip
        """Stream one request's reply; ``then`` gives the body of a request that goes on with it;
        ``until``: the first request is left (the server stops) as soon as it holds."""
        state = ReplyState(stop)
        deadlines = self._deadlines(max_tokens)
        cached: list[int] = [0]
        try:
            events = EventStream(self._client, self.url, path, body, gen, deadlines, self._hidden)
            yield from self._follow(events, state, max_tokens, cached, until)
            more, prompt_cached = then(state) if then else None, cached[0]
            if more is not None:
                events = EventStream(self._client, self.url, path, more, gen, deadlines, self._hidden)
                yield from self._follow(events, state, max_tokens, cached)
                cached[0] = prompt_cached
        except Cancelled:
            state.finish = "cancelled"
        except RemoteError as exc:  # the server went away, stalled or broke off mid-reply
            if not state.shown:
                raise
            state.finish, state.error = "interrupted", str(exc)
        tail = state.flush() if state.finish != "interrupted" else ""
        if tail:
            yield tail
        gen.result = state.completion(len(prompt), cached[0], self.tokenize)

    def _follow(
        self, events: EventStream, state: ReplyState, max_tokens: int, cached: list[int],
        until: Callable[[ReplyState], bool] | None = None,
    ) -> Iterator[str]:  # fmt: skip
        """Text as it comes, until the server says the reply is finished, a stop string shows or
        the limit is reached (held to it if the server is not). A stream that merely ends is a
        reply broken off, never one finished."""
        for event in events:
            state.prompt_done = state.prompt_done or time.perf_counter()
            text, tokens, final = self._parse_event(event)
            candidates = _native_candidates(event) if self.kind == "llama" else []
            count = None if self.kind == "llama" else 1
            shown = state.add(tokens, text, count=count, candidates=candidates) if text or tokens else ""
            if shown:
                yield shown
            if final is not None:
                state.finish, cached[0] = final.get("finish", state.finish), final.get("cached", 0)
                self.last_timings = final.get("timings", {})
                state.drafted, state.accepted = _draft_counts(self.last_timings)
                return
            if state.scanner.stopped or state.generated > max_tokens:  # one more than asked: it ignores it
                state.finish = "stop" if state.scanner.stopped else "length"
                return
            if until is not None and until(state):  # left here: the next request goes on from it
                state.finish = "length"
                return
        raise RemoteError(f"The server at {self.url} broke off the reply; the reply so far is kept.")

    def _parse_event(self, data: Any) -> tuple[str, list[int], dict | None]:
        """(text, token ids, end-of-reply facts or None) from one streamed event."""
        if not isinstance(data, dict):
            raise RemoteError(f"{self.url} sent an event that is not a JSON object.")
        if self.kind == "llama":
            return _native_event(data)
        return _openai_event(data)


def _chain_order(params: SamplingParams) -> list[str]:
    """llama-server's sampler names in the local chain's order (``engine/sampling.py``)."""
    dry = ["dry"] if params.dry_multiplier > 0 else []
    xtc = ["xtc"] if params.xtc_probability > 0 else []
    return ["top_k", "penalties", *dry, "top_p", "min_p", *xtc, "temperature"]


def _draft_counts(timings: dict) -> tuple[int, int]:
    """llama-server's drafted and accepted tokens for one reply, when it drafted (else 0, 0)."""
    drafted, accepted = timings.get("draft_n"), timings.get("draft_n_accepted")
    if isinstance(drafted, int) and isinstance(accepted, int) and 0 <= accepted <= drafted:
        return drafted, accepted
    return 0, 0


def _sampling(params: SamplingParams) -> dict:
    """Every setting is sent: servers' defaults differ (vLLM: temperature 1.0, top_k off)."""
    out: dict[str, object] = {
        "temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
        "min_p": params.min_p, "repeat_penalty": params.repeat_penalty,
        "repeat_last_n": params.repeat_last_n,
    }  # fmt: skip
    if params.seed is not None:
        out["seed"] = params.seed
    if params.dry_multiplier > 0:  # llama-server's own DRY and XTC (OpenAI-style servers ignore them)
        out |= {"dry_multiplier": params.dry_multiplier, "dry_base": params.dry_base,
                "dry_allowed_length": params.dry_allowed_length, "dry_penalty_last_n": params.dry_last_n,
                "dry_sequence_breakers": list(DRY_BREAKERS)}  # fmt: skip
    if params.xtc_probability > 0:
        out |= {"xtc_probability": params.xtc_probability, "xtc_threshold": params.xtc_threshold}
    return out


def _sampling_caveat(params: SamplingParams, kind: str) -> str:
    """Where a server samples differently from the local engine, in one line ("" where it does
    not): its repetition penalty and DRY always look back over the prompt, and an OpenAI-compatible
    server has no DRY or XTC."""
    if kind != "llama" and (params.dry_multiplier > 0 or params.xtc_probability > 0):
        return "This server has no DRY or XTC sampling; replies are sampled without them."
    if (params.repeat_penalty != 1.0 or params.dry_multiplier > 0) and not params.penalize_prompt:
        return "This server's repetition penalties also look back over the prompt (Basechat's do not)."
    return ""


_TOKENIZE_PATHS = {"llama": "/tokenize", "vllm": "/tokenize", "extras": "/extras/tokenize"}
_NATIVE_FINISH = {"eos": "stop", "word": "stop", "limit": "length"}


def _native_event(data: dict) -> tuple[str, list[int], dict | None]:
    text = data.get("content") or ""
    if not isinstance(text, str):
        raise RemoteError("The server sent reply text that is not text.")
    tokens = _token_ids(data.get("tokens") or [])
    if not data.get("stop"):
        return text, tokens, None
    timings = data.get("timings") or {}
    cached = int(timings.get("cache_n") or 0)  # "tokens_cached" counts the reply's own tokens too
    finish = _NATIVE_FINISH.get(str(data.get("stop_type")), "stop")
    return text, tokens, {"finish": finish, "cached": cached, "done": True, "timings": timings}


def _token_ids(values: object) -> list[int]:
    """Token ids from a server, checked: whole numbers a history can store (0 … 2³¹−1)."""
    if not isinstance(values, list) or not all(type(t) is int and 0 <= t < 2**31 for t in values):
        raise RemoteError(f"The server sent token ids that are not token ids: {str(values)[:60]}")
    return values


def _native_candidates(data: dict) -> list[tuple[float, tuple[TokenChoice, ...]]]:
    """llama-server's ``completion_probabilities`` (with ``n_probs``): per token, its probability
    and the top candidates, likeliest first."""
    rows = data.get("completion_probabilities") or []
    return [(_prob(row), tuple(sorted((_choice(c) for c in _top(row)), key=lambda c: -c.prob)))
            for row in rows if isinstance(row, dict)]  # fmt: skip


def _top(row: dict) -> list:
    return [c for c in row.get("top_probs") or row.get("top_logprobs") or [] if isinstance(c, dict)]


def _prob(entry: dict) -> float:
    if "prob" in entry:
        return float(entry["prob"])
    return math.exp(float(entry.get("logprob", float("-inf"))))


def _choice(entry: dict) -> TokenChoice:
    return TokenChoice(int(entry.get("id", -1)), str(entry.get("token", "")), _prob(entry))


def _openai_event(data: dict) -> tuple[str, list[int], dict | None]:
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    text = choice.get("text") or ""
    reason = choice.get("finish_reason")
    if reason is None:
        return text, [], None
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    return text, [], {"finish": "length" if reason == "length" else "stop", "cached": cached}


# -- estimated tokens, for servers without a tokenizer endpoint ---------------------

# No table: a pseudo-token's id spells its own text, so ids mean the same in every thread and
# every process (a stored reply's tokens read back after a restart) and nothing grows.
_PAIR = 1 << 30  # set: two characters below _NARROW, 15 bits each; else one character's code point
_NARROW = 1 << 15


def _estimate_tokens(text: str) -> list[int]:
    """Pseudo-tokens of up to ``ESTIMATED_CHARS_PER_TOKEN`` (2) characters: an over-count for
    fitting the context, and ids that turn back into exactly the same text."""
    ids, i = [], 0
    while i < len(text):
        first, second = ord(text[i]), ord(text[i + 1]) if i + 1 < len(text) else _NARROW
        if first < _NARROW and second < _NARROW:
            ids.append(_PAIR | first << 15 | second)
            i += 2
        else:
            ids.append(first)
            i += 1
    return ids


def _estimated_text(tokens: list[int]) -> str:
    return "".join(_piece_text(t) for t in tokens)


def _piece_text(token: int) -> str:
    if token & _PAIR and 0 <= token < 2 * _PAIR:
        return chr(token >> 15 & (_NARROW - 1)) + chr(token & (_NARROW - 1))
    return chr(token) if 0 <= token < 0x110000 else "\ufffd"


def _positive_int(value: object) -> int:
    """A size a server reports, or 0 (unknown) for anything that is not a positive whole number:
    a malformed ``/props`` or ``n_ctx: -50`` is not taken as it is."""
    return value if type(value) is int and 0 < value < 2**31 else 0
