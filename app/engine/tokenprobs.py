"""Sampling that keeps the candidates: each token's likeliest alternatives and their probabilities.

``llama_sampler_sample`` copies the logits into a candidate array, runs the
sampler chain over it and accepts the chosen token — and throws the array
away. This does the same three steps with an array Basechat owns (a numpy
buffer, refilled per token without a Python loop), so after the chain has run
the survivors are still there to read: the probabilities are the ones the
sampler drew from. The chosen token is the one ``llama_sampler_sample`` would
have chosen (same chain, same random state), so recording changes nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import llama_cpp as lc
import numpy as np

from app.engine.base import TokenChoice

_ENTRY = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
assert _ENTRY.itemsize == ctypes.sizeof(lc.llama_token_data)


class CandidateSampler:
    """One per context: its candidate buffer is reused for every token."""

    def __init__(self, ctx, n_vocab: int, piece: Callable[[int], bytes]) -> None:
        self._ctx = ctx
        self._n_vocab = n_vocab
        self._piece = piece
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._data = np.zeros(n_vocab, dtype=_ENTRY)
        self._array = lc.llama_token_data_array()

    def sample(self, sampler, index: int, k: int) -> tuple[int, float, tuple[TokenChoice, ...]]:
        """Sample from the logits at batch ``index``: the token, its probability, the top ``k``."""
        logits = lc.llama_get_logits_ith(self._ctx, index)
        self._data["id"] = self._ids
        self._data["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        self._data["p"] = 0.0
        array = self._array
        array.data = self._data.ctypes.data_as(ctypes.POINTER(lc.llama_token_data))  # type: ignore[assignment]
        array.size, array.selected, array.sorted = self._n_vocab, -1, False
        lc.llama_sampler_apply(sampler, ctypes.byref(array))
        survivors = self._survivors(array)
        selected = int(array.selected)
        token = int(survivors["id"][selected])
        lc.llama_sampler_accept(sampler, token)
        probs = _softmax(survivors["logit"])
        return token, float(probs[selected]), self._top(survivors["id"], probs, k)

    def _survivors(self, array) -> np.ndarray:
        """The candidates the chain kept (a sampler may have moved them to a buffer of its own)."""
        address = ctypes.cast(array.data, ctypes.c_void_p).value or 0
        size = int(array.size)
        raw = memoryview((ctypes.c_char * (size * _ENTRY.itemsize)).from_address(address)).cast("B")
        return np.frombuffer(raw, dtype=_ENTRY, count=size)

    def _top(self, ids: np.ndarray, probs: np.ndarray, k: int) -> tuple[TokenChoice, ...]:
        k = min(k, len(probs))
        best = np.argpartition(-probs, k - 1)[:k] if len(probs) > k else np.arange(len(probs))
        best = best[np.argsort(-probs[best], kind="stable")]
        return tuple(TokenChoice(int(ids[i]), self.text_of(int(ids[i])), float(probs[i])) for i in best)

    def text_of(self, token: int) -> str:
        return self._piece(token).decode("utf-8", errors="replace")


def _softmax(logits: np.ndarray) -> np.ndarray:
    values = logits.astype(np.float64)
    finite = np.isfinite(values)
    shifted = np.where(finite, values - values[finite].max(), -np.inf) if finite.any() else values
    weights = np.exp(shifted)
    return weights / weights.sum()
