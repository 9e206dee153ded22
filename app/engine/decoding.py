"""The llama.cpp context both generation loops work on: the single reply (``llama.py``) and the
alternatives decoded together (``parallel.py``).

It owns what the two loops share — the context, the vocabulary, the tokens whose cells
are cached, the sampler chain and the candidate buffer — so that neither reaches into
the other's private members.
"""

from __future__ import annotations

import ctypes
import threading

import llama_cpp as lc
import numpy as np

from app.engine.base import SamplingParams
from app.engine.minlength import NO_NUDGE, Nudges
from app.engine.sampling import build_chain, free_made
from app.engine.tokenprobs import CandidateSampler
from app.errors import ModelLoadError


class Decoding:
    """One context and the tokens cached in its sequence 0, in order."""

    def __init__(self, ctx, vocab) -> None:
        self.ctx = ctx
        self.vocab = vocab
        self.memory = lc.llama_get_memory(ctx)
        self.n_batch = lc.llama_n_batch(ctx)
        self._n_vocab = lc.llama_vocab_n_tokens(vocab)
        self.cached: list[int] = []
        self._one = (lc.llama_token * 1)()
        self._piece_buf = ctypes.create_string_buffer(256)
        self._candidates: CandidateSampler | None = None
        self._made: dict = {}  # samplers set up once for this vocabulary (DRY), cloned per reply
        self._batch: lc.llama_batch | None = None  # for drafts: made on first use, freed with the context
        self.shifted_tokens = 0  # cells removed by context shifts, for the bench and the tests

    @property
    def can_shift(self) -> bool:
        """Whether cells can be moved to other positions (llama.cpp's context shift). Gemma 3's
        sliding-window layers allow it here because the context keeps them whole (swa_full)."""
        return bool(lc.llama_memory_can_shift(self.memory))

    def shift_out_dropped(self, prompt: list[int], shared: int) -> int:
        """When ``prompt`` is the cached tokens with a stretch after the first ``shared`` removed
        (old turns dropped to fit the context), remove those cells and move the later ones back
        instead of evaluating them again, as llama.cpp's server does with ``n_discard``. Returns how
        much of ``prompt`` is then cached (``shared`` when nothing could be kept). Sliding-window
        layers hold only their window; the engine checks that what it keeps still covers it."""
        start = find_resumed_run(self.cached, prompt, shared)
        if start is None or not lc.llama_memory_seq_rm(self.memory, 0, shared, start):
            return shared
        lc.llama_memory_seq_add(self.memory, 0, start, -1, shared - start)
        self.cached = self.cached[:shared] + self.cached[start:]
        self.shifted_tokens += start - shared
        return shared_length(self.cached, prompt)

    def clear(self) -> None:
        lc.llama_memory_clear(self.memory, True)
        self.cached = []

    def is_end(self, token: int) -> bool:
        return bool(lc.llama_vocab_is_eog(self.vocab, token))

    def piece(self, token: int) -> bytes:
        n = lc.llama_token_to_piece(self.vocab, token, self._piece_buf, 256, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
            return buf.raw[:n]
        return self._piece_buf.raw[:n]

    def decode(self, tokens: list[int], cancel: threading.Event) -> bool:
        """Evaluate tokens in batches; False if cancelled between batches."""
        for start in range(0, len(tokens), self.n_batch):
            if cancel.is_set():
                return False
            chunk = tokens[start : start + self.n_batch]
            arr = (lc.llama_token * len(chunk))(*chunk)
            self.check(lc.llama_decode(self.ctx, lc.llama_batch_get_one(arr, len(chunk))))
            self.cached.extend(chunk)
        return True

    def decode_one(self, token: int) -> None:
        self._one[0] = token
        self.check(lc.llama_decode(self.ctx, lc.llama_batch_get_one(self._one, 1)))
        self.cached.append(token)

    def decode_all_logits(self, tokens: list[int]) -> None:
        """Evaluate ``tokens`` (fewer than a batch) with logits kept at every position, so a
        draft can be checked token by token (``sample(sampler, i)`` reads position i)."""
        batch = self._batch = self._batch or lc.llama_batch_init(self.n_batch, 0, 1)
        start = len(self.cached)
        batch.n_tokens = len(tokens)
        for row, token in enumerate(tokens):
            batch.token[row], batch.pos[row], batch.n_seq_id[row] = token, start + row, 1
            batch.seq_id[row][0], batch.logits[row] = 0, 1
        self.check(lc.llama_decode(self.ctx, batch))
        self.cached.extend(tokens)

    def forget_after(self, keep: int) -> None:
        """Remove the cells after the first ``keep`` tokens (a draft's rejected tail)."""
        if keep < len(self.cached):
            if not lc.llama_memory_seq_rm(self.memory, 0, keep, -1):
                self.clear()
                raise ModelLoadError("llama.cpp could not remove a rejected draft from the cache.")
            del self.cached[keep:]

    def free(self) -> None:
        free_made(self._made)
        if self._batch is not None:
            lc.llama_batch_free(self._batch)
            self._batch = None

    def check(self, rc: int) -> None:
        if rc != 0:
            self.clear()
            raise ModelLoadError(f"llama.cpp failed to evaluate the prompt (code {rc}).")

    def sampler(self, params: SamplingParams, history: list[int]):
        """The native sampler chain for ``params``, having seen ``history`` (the prompt)."""
        return build_chain(self.vocab, params, history, self._made)

    def sample(self, sampler, index: int, n_probs: int, nudges: Nudges = NO_NUDGE) -> tuple[int, list]:
        """The next token from the logits at batch ``index``; with ``n_probs``, its candidates too.
        ``nudges``: tokens whose logits move by an amount first (minus infinity: they cannot be picked)."""
        if nudges:
            logits = lc.llama_get_logits_ith(self.ctx, index)
            for tokens, delta in nudges:
                for token in tokens:
                    logits[token] += delta
        if not n_probs:
            return lc.llama_sampler_sample(sampler, self.ctx, index), []
        if self._candidates is None:
            self._candidates = CandidateSampler(self.ctx, self._n_vocab, self.piece)
        token, prob, top = self._candidates.sample(sampler, index, n_probs)
        return token, [(prob, top)]

    def logprob(self, index: int, token: int) -> float:
        """The log-probability of ``token`` in the logits at batch ``index`` (with any nudges
        they were given, before the sampler chain): what ranks alternatives by likelihood."""
        return self.logprobs(index, [token])[0]

    def logprobs(self, index: int, tokens: list[int]) -> list[float]:
        """``logprob`` of several tokens at one place, the normaliser worked out once (a vocabulary
        of 262,144 makes it the costly part)."""
        row, norm = self._normalised(index)
        return [float(row[token]) - norm for token in tokens]

    def likeliest(self, index: int, n: int) -> tuple[tuple[int, float], ...]:
        """The ``n`` likeliest tokens at batch ``index`` with their log-probabilities, best first."""
        row, norm = self._normalised(index)
        best = np.argpartition(row, -n)[-n:]
        return tuple(sorted(((int(t), float(row[t]) - norm) for t in best), key=lambda pair: -pair[1]))

    def _normalised(self, index: int) -> tuple[np.ndarray, float]:
        """The logits at batch ``index`` and their log-sum-exp (a banned token's minus infinity
        adds exp(-inf) = 0)."""
        row = np.ctypeslib.as_array(lc.llama_get_logits_ith(self.ctx, index), shape=(self._n_vocab,))
        top = float(row.max())
        return row, top + float(np.log(np.exp(row - top).sum()))


SHIFT_MIN_RUN = 32  # tokens the kept part must share with the prompt for a shift to be worth it


def find_resumed_run(cached: list[int], prompt: list[int], shared: int) -> int | None:
    """Where, after ``shared``, the cached tokens take up ``prompt`` again (its next
    ``SHIFT_MIN_RUN`` tokens and everything cached from there on that it goes on to match), or
    None. Turns are dropped whole from the front of the history, so the kept ones follow on."""
    probe = prompt[shared : shared + SHIFT_MIN_RUN]
    if len(probe) < SHIFT_MIN_RUN:
        return None
    first = probe[0]
    for start in range(shared + 1, len(cached) - SHIFT_MIN_RUN + 1):
        if cached[start] == first and cached[start : start + SHIFT_MIN_RUN] == probe:
            return start
    return None


def shared_length(old: list[int] | tuple[int, ...], new: list[int]) -> int:
    """How many leading tokens two token lists share."""
    shared = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        shared += 1
    return shared
