"""A request body, checked field by field: every client is hostile until checked. A bad body is one
``ApiError`` with one clear message, answered in OpenAI's error shape with status 400."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from app.engine.base import SamplingParams

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_TOKENS_LIMIT = 8192
MAX_N = 8
MAX_LOGPROBS = 20
MAX_STOPS = 16


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and OpenAI's error type."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": None, "code": None}}


def parse_body(raw: bytes) -> dict:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(f"The request body is over {MAX_BODY_BYTES // 1024**2} MB.", 413)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ApiError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError("The request body must be a JSON object.")
    return body


def number(body: dict, name: str, low: float, high: float, default: float | None = None) -> float | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(f"'{name}' must be a number.")
    if not low <= value <= high:
        raise ApiError(f"'{name}' must be between {low:g} and {high:g}.")
    return float(value)


def whole(body: dict, name: str, low: int, high: int, default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if type(value) is not int:
        raise ApiError(f"'{name}' must be a whole number.")
    if not low <= value <= high:
        raise ApiError(f"'{name}' must be between {low} and {high}.")
    return value


def count(body: dict, name: str, low: int, high: int, default: int) -> int:
    """``whole`` with a default: never None."""
    value = whole(body, name, low, high)
    return default if value is None else value


def flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(f"'{name}' must be true or false.")
    return value


def stops(body: dict, name: str = "stop") -> list[str]:
    value = body.get(name)
    value = [value] if isinstance(value, str) else value or []
    if (
        not isinstance(value, list)
        or len(value) > MAX_STOPS
        or not all(isinstance(s, str) and s for s in value)
    ):
        raise ApiError(f"'{name}' must be a text or a list of at most {MAX_STOPS} texts.")
    return value


# OpenAI's and llama.cpp server's names → Basechat's sampling fields, with their ranges.
_NUMBERS = {"temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0),
            "repeat_penalty": (0.0, 10.0)}  # fmt: skip


def sampling(body: dict, base: SamplingParams, max_tokens: int, names: dict | None = None) -> SamplingParams:
    """The request's sampling on top of the server's own; ``names`` maps a dialect's field names
    to OpenAI's (Kobold's ``rep_pen`` is ``repeat_penalty``)."""
    body = {(names or {}).get(k, k): v for k, v in body.items()}
    given: dict[str, Any] = {key: number(body, key, *bounds) for key, bounds in _NUMBERS.items()}
    given["top_k"] = whole(body, "top_k", 0, 100_000)
    seed = whole(body, "seed", -(2**63), 2**64)
    given["seed"] = None if seed is None or seed < 0 else seed % 2**32
    given["max_tokens"] = whole(body, "max_tokens", 0, MAX_TOKENS_LIMIT, max_tokens)
    given["ignore_eos"] = flag(body, "ignore_eos") or None  # llama-server's: benchmarks
    chosen = {k: v for k, v in given.items() if v is not None}
    return replace(base, **chosen, best_of=1, n_probs=0)


def prompt_tokens(body: dict, tokenize, start: list[int]) -> tuple[list[int], str | None]:
    """(tokens, text) for ``prompt``: a text (the model's start tokens first), a list with one
    text, or a list of token ids (text None)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise ApiError("'prompt' is empty.")
        return start + tokenize(prompt), prompt
    if isinstance(prompt, list) and prompt and all(type(t) is int and 0 <= t < 2**31 for t in prompt):
        return list(prompt), None
    raise ApiError("'prompt' must be a text or a list of token ids (one prompt per request).")
