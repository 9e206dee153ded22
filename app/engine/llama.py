"""The llama.cpp backend: the only module that imports ``llama_cpp``.

It drives llama.cpp's C API directly instead of ``Llama.generate``: sampling
runs in llama.cpp's native sampler chain and no logits are copied into
Python, so the per-token work left in Python is a handful of C calls
(measured on the default model with 2 threads: ``Llama.generate`` 36 tok/s,
this loop close to llama.cpp's own).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import llama_cpp as lc
import psutil

from app.engine import drafting, parallel
from app.engine.base import (
    Alternatives,
    EngineInfo,
    Generation,
    SamplingParams,
    TokenScore,
    one_at_a_time,
)
from app.engine.decoding import Decoding, shared_length
from app.engine.device import default_threads
from app.engine.gguf_header import GGUFInfo
from app.engine.kvstate import (
    DEFAULT_DISK_CAP,
    KVStateStore,
    SavedState,
    file_identity,
    ram_cap_for,
    token_digest,
)
from app.engine.minlength import EndGuard
from app.engine.preflight import check_model_file
from app.engine.reply import ReplyState
from app.errors import EngineBusy, InputError, ModelLoadError

log = logging.getLogger(__name__)
DEFAULT_CTX = 4096
# Set, no real model is loaded in this process or its children: the test suite's model-free tier
# (``make test-fast``) sets it for every test not marked ``model``, so a test that loads one without
# the mark fails instead of making the fast tier slow. A few-MB test GGUF still loads.
LOAD_NO_MODEL_ENV = "BASECHAT_LOAD_NO_MODEL"
SMALL_MODEL_BYTES = 32 * 1024**2
# Tokens scored per batch: every position keeps its logits, n_vocab floats each (262k for Gemma 3,
# so 64 positions hold 64 MB; a whole 512-token batch would hold half a gigabyte).
SCORE_CHUNK = 64
MAX_ALTERNATIVES = 8  # sequences one context can decode side by side
_llama_messages: list[str] = []


@lc.llama_log_callback
def _on_llama_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    """Keep llama.cpp's chatter off the terminal; remember errors to explain a failed load."""
    message = text.decode("utf-8", errors="replace")
    if level >= 3:  # ggml: 1 debug, 2 info, 3 warn, 4 error, 5 continuation
        _llama_messages.append(message.strip())
        del _llama_messages[:-20]
    log.debug("llama.cpp: %s", message.rstrip())


lc.llama_log_set(_on_llama_log, ctypes.c_void_p(0))
lc.llama_backend_init()


def gpu_offload_supported() -> bool:
    return bool(lc.llama_supports_gpu_offload())


def device_name(n_gpu_layers: int) -> str:
    if n_gpu_layers == 0 or not gpu_offload_supported():
        return "CPU"
    system = lc.llama_print_system_info().decode(errors="replace")
    return "Metal" if "METAL" in system.upper() else "GPU"


_MIN_RESTORE_GAIN = 32  # tokens a saved state must add to be worth restoring


# Type-ahead evaluates in batches this small, so a keystroke or Send waits for one at most.
PREFILL_BATCH = 64


class LlamaEngine:
    """One loaded model and its context. One generation at a time."""

    name = "llama.cpp"

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        flash_attn: bool | None = None,
        free_bytes: int | None = None,
        state_dir: Path | None = None,
        kv_disk_cap: int | None = None,
    ) -> None:
        """``state_dir``: where KV states are saved so conversations resume warm (None: never)."""
        self.path = Path(path)
        want_ctx = n_ctx or DEFAULT_CTX
        self.info: GGUFInfo = check_model_file(self.path, want_ctx, free_bytes)
        self.n_ctx = min(want_ctx, self.info.context_length or want_ctx)
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = (-1 if gpu_offload_supported() else 0) if n_gpu_layers is None else n_gpu_layers
        self.device = device_name(self.n_gpu_layers)
        self._model = self._load_model()
        self._ctx = self._new_context(flash_attn)
        self.decoding = Decoding(self._ctx, lc.llama_model_get_vocab(self._model))
        self.n_batch = self.decoding.n_batch
        self._lock = threading.Lock()
        self._n_swa = lc.llama_model_n_swa(self._model)
        self._states = self._open_states(state_dir, kv_disk_cap, flash_attn)
        self._draft_mode = "off"
        self._draft_model: LlamaEngine | None = None
        self._model_drafter: drafting.ModelDrafter | None = None
        self._draft_policy = drafting.DraftPolicy()
        self._policies: dict[tuple[str, bool], drafting.DraftPolicy] = {}  # learned, per choice

    # -- loading -------------------------------------------------------------

    def _load_model(self):
        if os.environ.get(LOAD_NO_MODEL_ENV) and self.info.file_size > SMALL_MODEL_BYTES:
            raise ModelLoadError(
                f"{self.path.name}: no model is loaded in this process ({LOAD_NO_MODEL_ENV})."
            )
        params = lc.llama_model_default_params()
        params.n_gpu_layers = self.n_gpu_layers
        params.load_mode = lc.LLAMA_LOAD_MODE_MMAP
        _llama_messages.clear()
        model = lc.llama_model_load_from_file(str(self.path).encode(), params)
        if not model:
            raise ModelLoadError(self._load_failure())
        return model

    def _load_failure(self) -> str:
        arch = self.info.architecture
        if any("unknown model architecture" in m for m in _llama_messages):
            return f"{self.path.name}: this llama.cpp does not know the '{arch}' architecture."
        last = _llama_messages[-1] if _llama_messages else "no reason given"
        return f"llama.cpp could not load {self.path.name} ({arch}): {last}"

    def _new_context(self, flash_attn: bool | None):
        params = lc.llama_context_default_params()
        params.n_ctx = self.n_ctx
        params.n_batch = 512
        params.n_ubatch = 512
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.swa_full = True  # keep sliding-window layers whole, so prefixes can be reused
        # Alternatives are sequences that share the prompt's cells; one unified cache keeps the
        # whole context for each (a split cache would give every sequence n_ctx / n_seq_max).
        params.n_seq_max = MAX_ALTERNATIVES
        params.kv_unified = True
        params.flash_attn_type = {
            None: lc.LLAMA_FLASH_ATTN_TYPE_AUTO,
            True: lc.LLAMA_FLASH_ATTN_TYPE_ENABLED,
            False: lc.LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }[flash_attn]
        ctx = lc.llama_init_from_model(self._model, params)
        if not ctx:
            lc.llama_model_free(self._model)
            raise ModelLoadError(f"llama.cpp could not create a context of {self.n_ctx} tokens.")
        return ctx

    def _open_states(
        self, folder: Path | None, cap: int | None, flash_attn: bool | None
    ) -> KVStateStore | None:
        """Everything that changes what the cache holds is part of a state's identity."""
        if folder is None:
            return None
        try:
            identity = {
                "format": 1, "model_sha256": file_identity(self.path, folder),
                "llama_cpp_python": lc.__version__, "n_ctx": self.n_ctx, "type_k": "f16", "type_v": "f16",
                "flash_attn": str(flash_attn), "swa_full": True, "n_gpu_layers": self.n_gpu_layers,
                "kv_unified": True,
            }  # fmt: skip
            n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self._model))
            ram_cap = ram_cap_for(self.path.stat().st_size, psutil.virtual_memory().total)
            return KVStateStore(folder, identity, cap or DEFAULT_DISK_CAP, ram_cap, n_vocab=n_vocab)
        except OSError as exc:  # a read-only or full data folder: chats still work, cold
            log.warning("KV states are off: %s", exc)
            return None

    def describe(self) -> EngineInfo:
        return EngineInfo(
            kind="local", name=self.info.name, device=self.device, n_ctx=self.n_ctx,
            location=str(self.path), threads=self.n_threads, instruct=self.info.looks_instruct,
            state_ram_mb=self._states.ram_cap // 2**20 if self._states is not None else 0,
        )  # fmt: skip

    def close(self) -> None:
        """Free the context and weights; the engine is unusable afterwards."""
        if self._states is not None:
            self._states.close()
        with self._lock:
            self._close_draft()
            self.decoding.free()
            if self._ctx:
                lc.llama_free(self._ctx)
                self._ctx = None
            if self._model:
                lc.llama_model_free(self._model)
                self._model = None

    def __enter__(self) -> LlamaEngine:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- tokens --------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Special tokens are never parsed: text typed as "<eos>" stays text."""
        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buf = (lc.llama_token * size)()
            n = lc.llama_tokenize(self.decoding.vocab, data, len(data), buf, size, False, False)
            if n >= 0:
                return list(buf[:n])
            size = -n

    def detokenize(self, tokens: list[int]) -> str:
        arr = (lc.llama_token * len(tokens))(*tokens)
        size = len(tokens) * 16 + 16
        while True:
            buf = ctypes.create_string_buffer(size)
            n = lc.llama_detokenize(self.decoding.vocab, arr, len(tokens), buf, size, False, False)
            if n >= 0:
                return buf.raw[:n].decode("utf-8", errors="replace")
            size = -n

    def score(self, tokens: list[int], top: int = 0) -> list[TokenScore]:
        """Each token after the first, with its log-probability given those before it and the
        ``top`` likeliest tokens there, from logits kept at every position (the cache is cleared
        first: scoring is not a conversation)."""
        if not 0 < len(tokens) <= self.n_ctx:
            raise InputError(f"A text of {len(tokens)} tokens cannot be scored in a context of {self.n_ctx}.")
        if not self._lock.acquire(blocking=False):
            raise EngineBusy("A reply is already being generated; stop it or wait for it to finish.")
        try:
            self.decoding.clear()
            return [
                score
                for start in range(0, len(tokens), SCORE_CHUNK)
                for score in self._scored(tokens, start, top)
            ]
        finally:
            self._lock.release()

    def _scored(self, tokens: list[int], start: int, top: int) -> list[TokenScore]:
        chunk = tokens[start : start + SCORE_CHUNK]
        self.decoding.decode_all_logits(chunk)
        following = tokens[start + 1 : start + 1 + len(chunk)]
        return [
            TokenScore(
                token, self.decoding.logprob(row, token), self.decoding.likeliest(row, top) if top else ()
            )
            for row, token in enumerate(following)
        ]

    def start_tokens(self) -> list[int]:
        vocab = self.decoding.vocab
        return [lc.llama_vocab_bos(vocab)] if lc.llama_vocab_get_add_bos(vocab) else []

    # -- evaluation ----------------------------------------------------------

    @property
    def cached_tokens(self) -> list[int]:
        """Tokens whose keys and values are in the KV cache, in order."""
        return list(self.decoding.cached)

    @property
    def context(self):
        """The llama.cpp context itself, for the bare yardstick loop (``engine/reference.py``)."""
        return self._ctx

    def flush_states(self) -> None:
        """Write saved KV states out now (the bench measures their size on disk)."""
        if self._states is not None:
            self._states.flush()

    @contextlib.contextmanager
    def without_saved_states(self) -> Iterator[None]:
        """Neither restore nor save states inside the block: the cold path, for measuring."""
        states, self._states = self._states, None
        try:
            yield
        finally:
            self._states = states

    def clear_cache(self) -> None:
        self.decoding.clear()

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Keep the cached prefix shared with ``prompt``: when old turns were dropped to fit, shift
        the later cells back rather than evaluate them again; else restore a longer saved state.
        At least one token is evaluated."""
        shared = shared_length(self.decoding.cached, prompt)
        if shared < len(prompt) - _MIN_RESTORE_GAIN and self._near_full() and self.can_shift_context:
            shared = self.decoding.shift_out_dropped(prompt, shared)
        if self._states is not None and shared < len(prompt) - _MIN_RESTORE_GAIN:
            shared = self._restore(prompt, shared)
        shared = min(shared, len(prompt) - 1)
        if shared < len(self.decoding.cached):
            memory = self.decoding.memory
            if not self._trim_is_safe(shared) or not lc.llama_memory_seq_rm(memory, 0, shared, -1):
                self.clear_cache()
                shared = 0
            del self.decoding.cached[shared:]
        return shared

    can_rank_replies = True  # alternatives decode together and carry their log-probability

    @property
    def can_shift_context(self) -> bool:
        return self.decoding.can_shift

    def _near_full(self) -> bool:
        """A context shift is for a chat that outgrew the context (its oldest turns were dropped),
        not for an edit in the middle of a short one: the cells kept were computed after text that
        is gone, which is the accepted approximation of a shift, and only worth it there."""
        return len(self.decoding.cached) >= self.n_ctx // 2

    def _trim_is_safe(self, keep: int) -> bool:
        """A restored state holds only the last window of a sliding-window layer's positions
        (Gemma 3: 512). Cutting it back further than that window would leave the next tokens
        attending to cells that are not there: llama.cpp allows it, the logits are wrong."""
        oldest = lc.llama_memory_seq_pos_min(self.decoding.memory, 0)
        return oldest <= 0 or self._n_swa <= 0 or keep - oldest >= self._n_swa - 1  # p sees p - n_swa + 1 …

    # -- saved states ------------------------------------------------------------------

    def _restore(self, prompt: list[int], shared: int) -> int:
        """The saved state of this chat before its oldest turns were dropped, restored and shifted
        (a chat past its context); else a saved state that begins the prompt."""
        states = self._states
        if states is None:
            return shared
        if self.can_shift_context:
            shared = self._restore_and_shift(prompt, shared, states)
        saved = states.best_prefix(prompt, longer_than=shared + _MIN_RESTORE_GAIN)
        return self._load_state(saved, states) if saved is not None else shared

    def _restore_and_shift(self, prompt: list[int], shared: int, states: KVStateStore) -> int:
        """How much of ``prompt`` is cached after trying (the cache may now hold a loaded state)."""
        at_least = max(shared, _MIN_RESTORE_GAIN)
        saved = states.best_to_shift(prompt, at_least=at_least, longer_than=self.n_ctx // 2)
        if saved is None or not self._load_state(saved, states):
            return shared_length(self.decoding.cached, prompt)
        shifted = self.decoding.shift_out_dropped(prompt, shared_length(self.decoding.cached, prompt))
        if not self._trim_is_safe(shifted):  # the state's window no longer covers what comes next
            self.clear_cache()
            return 0
        return shifted

    def _load_state(self, saved: SavedState, states: KVStateStore) -> int:
        """Put ``saved`` in the cache; how many of its tokens are cached (0 if it was refused)."""
        lc.llama_memory_clear(self.decoding.memory, True)
        buffer = (ctypes.c_uint8 * len(saved.blob)).from_buffer_copy(saved.blob)
        if lc.llama_state_seq_set_data(self._ctx, buffer, len(saved.blob), 0) != len(saved.blob):
            states.discard(token_digest(saved.tokens), "llama.cpp refused it")
            self.clear_cache()
            return 0
        if lc.llama_memory_seq_pos_max(self.decoding.memory, 0) + 1 != len(saved.tokens):
            states.discard(token_digest(saved.tokens), "its cells do not match its tokens")
            self.clear_cache()
            return 0
        self.decoding.cached = list(saved.tokens)
        return len(saved.tokens)

    def save_state(self) -> None:
        """Keep the KV state of what is cached now (after a reply, or before switching away)."""
        if self._states is None or len(self.decoding.cached) < _MIN_RESTORE_GAIN:
            return
        with self._lock:
            size = lc.llama_state_seq_get_size(self._ctx, 0)
            buffer = (ctypes.c_uint8 * size)()
            written = lc.llama_state_seq_get_data(self._ctx, buffer, size, 0)
            tokens = list(self.decoding.cached)
        if written == size:
            self._states.save(tokens, bytes(buffer))

    def remember(self, tokens: list[int]) -> None:
        """Evaluate ``tokens`` (a frame every new chat starts with) and keep their state."""
        if self._states is None or len(tokens) < _MIN_RESTORE_GAIN or self._states.has(tokens):
            return
        with self._lock:
            reused = self._reuse_prefix([*tokens, 0])  # a stand-in last token: all of ``tokens`` stays
            if not self.decoding.decode(tokens[reused:], threading.Event()):
                return
        self.save_state()

    def continuation_logprobs(self, prompt: list[int], options: list[list[int]]) -> list[float]:
        """Each option's log-probability after ``prompt``: the prompt is evaluated once (reusing
        the cache) and each option's tokens after it, then forgotten, so the prompt stays cached
        for the reply that follows."""
        if not prompt or not options or not all(options):
            raise ValueError("a prompt and non-empty options are needed")
        if len(prompt) + max(map(len, options)) > self.n_ctx:
            raise InputError("The conversation is too long to choose who speaks next.")
        if not self._lock.acquire(blocking=False):
            raise EngineBusy("A reply is already being generated; stop it or wait for it to finish.")
        try:
            reused = self._reuse_prefix(prompt)
            self.decoding.decode(prompt[reused:], threading.Event())
            firsts = self.decoding.logprobs(-1, [option[0] for option in options])
            pairs = zip(firsts, options, strict=True)
            return [first + self._after_first(len(prompt), option) for first, option in pairs]
        finally:
            self._lock.release()

    def _after_first(self, prompt_length: int, option: list[int]) -> float:
        """The log-probability of an option's tokens after its first, given the prompt and it."""
        if len(option) < 2:
            return 0.0
        self.decoding.decode_all_logits(option[:-1])
        total = sum(self.decoding.logprob(row, token) for row, token in enumerate(option[1:]))
        self.decoding.forget_after(prompt_length)
        return total

    def prefill(self, tokens: list[int], stale) -> int:
        """Evaluate ``tokens`` (a prompt as typed so far) in small batches while nothing else uses
        the model; a reply, a keystroke or Send (``stale``) stops it between batches. The next
        prompt reuses whatever prefix it shares, so what is generated never changes."""
        if len(tokens) < 2 or not self._lock.acquire(blocking=False):
            return 0  # a reply is being written: it comes first
        try:
            reused = self._reuse_prefix([*tokens, 0])  # a stand-in last token: all of ``tokens`` stays
            fresh = tokens[reused:]
            done = 0
            for start in range(0, len(fresh), PREFILL_BATCH):
                if not self.decoding.decode(fresh[start : start + PREFILL_BATCH], stale):
                    break
                done = min(start + PREFILL_BATCH, len(fresh))
            return done
        finally:
            self._lock.release()

    # -- generation ----------------------------------------------------------

    def generate(self, prompt: list[int], params: SamplingParams, stop: list[str]) -> Generation:
        """Start streaming a continuation of ``prompt``; raises EngineBusy if one is running."""
        return one_at_a_time(self._lock, prompt, lambda gen, tokens: self._run(gen, tokens, params, stop))

    def _run(
        self, gen: Generation, prompt: list[int], params: SamplingParams, stop: list[str]
    ) -> Iterator[str]:
        state = ReplyState(stop)
        reused = self._reuse_prefix(prompt)
        if self.decoding.decode(prompt[reused:], gen.cancel_event):
            state.prompt_done = time.perf_counter()
            sampler = self.decoding.sampler(params, prompt)
            try:
                drafter = self._drafter()
                policy, n_ctx = self._draft_policy, self.n_ctx
                guard = self._end_guard(stop, params)
                yield from drafting.run(
                    self.decoding, gen, params, state, sampler, drafter, policy, n_ctx, guard
                )
            finally:
                lc.llama_sampler_free(sampler)
        else:
            state.finish = "cancelled"
        tail = state.flush()
        if tail:
            yield tail
        gen.result = state.completion(len(prompt), reused, self.tokenize)

    def _end_guard(self, stop: list[str], params: SamplingParams) -> EndGuard:
        return EndGuard(
            self.decoding.vocab, self.decoding.piece, self.tokenize, stop, params.min_tokens, params.favour
        )

    # -- drafting (speculative decoding) -----------------------------------------

    def use_draft(self, choice: str, always: bool = False) -> str:
        """Draft "off", by "lookup" in the text, or with the model file at path ``choice`` (loaded
        beside this one, refused in one line when its vocabulary differs). Returns a caveat to
        show ("" here: this engine does all three). ``always``: draft whatever is proposed, even
        where it does not pay (the tests and the acceptance ceiling in the bench). A draft model
        stays loaded, with its cache, until another one is chosen or the engine closes."""
        with self._lock:
            if choice not in ("off", "lookup"):
                self._load_draft(choice)
            self._draft_mode = choice if choice in ("off", "lookup") else "model"
            self._draft_policy = self._policies.setdefault((choice, always), drafting.DraftPolicy(always))
            return ""

    def _load_draft(self, path: str) -> None:
        if self._draft_model is not None and self._draft_model.path == Path(path):
            return
        self._close_draft()
        draft = LlamaEngine(path, n_ctx=self.n_ctx, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers)
        why = drafting.vocabulary_mismatch(self.decoding, draft.decoding)
        if why:
            draft.close()
            raise ModelLoadError(f"{draft.info.name} cannot draft for {self.info.name}: {why}.")
        self._draft_model, self._model_drafter = draft, drafting.ModelDrafter(draft.decoding)

    def sampling_caveat(self, _params: SamplingParams) -> str:
        """Every sampler runs here as asked."""
        return ""

    @property
    def draft_mode(self) -> str:
        return self._draft_mode

    def _drafter(self) -> drafting.Drafter | None:
        if self._draft_mode == "lookup":
            return drafting.LookupDrafter()
        return self._model_drafter if self._draft_mode == "model" else None

    def _close_draft(self) -> None:
        if self._model_drafter is not None:
            self._model_drafter.close()
        if self._draft_model is not None:
            self._draft_model.close()
        self._draft_model, self._model_drafter, self._draft_mode = None, None, "off"

    # -- alternatives ----------------------------------------------------------

    def generate_many(
        self, prompt: list[int], params: SamplingParams, stop: list[str], n: int
    ) -> Alternatives:
        """``n`` continuations decoded together: the prompt is evaluated once, in sequence 0, and
        copied to sequences 1…n-1 (the cells are shared, not duplicated); each step decodes one
        token of every live sequence in one batch. Alternative i samples with seed + i."""
        if not 1 <= n <= MAX_ALTERNATIVES:
            raise ValueError(f"between 1 and {MAX_ALTERNATIVES} alternatives")
        body = lambda alts, tokens: self._many(alts, tokens, params, stop)  # noqa: E731
        return one_at_a_time(self._lock, prompt, body, many=n)

    def _many(
        self, alts: Alternatives, prompt: list[int], params: SamplingParams, stop: list[str]
    ) -> Iterator[tuple[int, str]]:
        reused = self._reuse_prefix(prompt)
        guard = self._end_guard(stop, params)
        yield from parallel.run(
            self.decoding, alts, prompt, reused, params, stop, self.tokenize, self.n_ctx, guard
        )
