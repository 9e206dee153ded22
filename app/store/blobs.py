"""How a message's token ids and token probabilities are kept in SQLite: compact blobs."""

from __future__ import annotations

import json
import zlib
from array import array


def pack_tokens(tokens: tuple[int, ...] | list[int] | None) -> bytes | None:
    return None if tokens is None else array("i", tokens).tobytes()


def pack_probs(probs: list | None) -> bytes | None:
    """Token probabilities, compact: JSON of [id, text, p, [[id, text, p], …]] rows, deflated."""
    return None if probs is None else zlib.compress(json.dumps(probs, separators=(",", ":")).encode())


def unpack_probs(blob: bytes | None) -> list | None:
    return None if blob is None else json.loads(zlib.decompress(blob))


def unpack_tokens(blob: bytes | None) -> tuple[int, ...] | None:
    if blob is None:
        return None
    values = array("i")
    values.frombytes(blob)
    return tuple(values)
