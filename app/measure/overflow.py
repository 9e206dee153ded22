"""A chat past its context, measured: time to first token of the turns after it first overflows
against the warm turns before, how many of them evaluate more than half their prompt, and whether
greedy replies from a shifted cache match a cold evaluation of the same prompt."""

from __future__ import annotations

import statistics
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from app.chat import ChatSession
from app.engine import reference
from app.engine.base import PLAIN_GREEDY, Backend
from app.engine.factory import open_backend
from app.scaffold import load_template

# Short replies, as a chat's; the reply length does not matter, only that turns keep coming.
CHAT = replace(PLAIN_GREEDY, max_tokens=32)


def overflow_figures(path: Path, n_ctx: int = 2048, turns: int = 10) -> dict:
    """``turns`` warm turns before the first overflow and ``turns`` after it, on the chat frame."""
    with closing(open_backend(path, n_ctx=n_ctx)) as engine:
        before, after = _turns_around_the_overflow(engine, turns)
        identical = _shifted_against_cold(engine, turns)
    warm, over = _median_ttft(before), _median_ttft(after)
    return {
        "overflow_n_ctx": n_ctx, "overflow_ttft_warm_s": round(warm, 4), "overflow_ttft_s": round(over, 4),
        "overflow_ttft_over_warm": round(over / warm, 3),
        "overflow_full_reeval_share": round(sum(_reevaluated(u) for u in after) / len(after), 3),
        "overflow_shifted_identical": f"{identical}/{turns}",
    }  # fmt: skip


def remote_overflow_figures(server, n_ctx: int, turns: int) -> dict:
    """The same through a server, fitted to ``n_ctx`` (chunked dropping: a server cannot shift)."""
    with closing(open_backend(server=server, n_ctx=n_ctx)) as engine:
        before, after = _turns_around_the_overflow(engine, turns)
    return {
        "remote_overflow_ttft_over_warm": round(_median_ttft(after) / _median_ttft(before), 3),
        "remote_overflow_full_reeval_share": round(sum(_reevaluated(u) for u in after) / len(after), 3),
    }


def _turns_around_the_overflow(engine: Backend, turns: int) -> tuple[list, list]:
    session = ChatSession(engine, load_template("chat"), CHAT)
    before: list = []
    after: list = []
    for number in range(10_000):
        reply = session.ask(f"Tell me one short fact about the number {number}.")
        (after if reply.dropped_turns else before).append(reply.completion.usage)
        if len(after) == turns:
            return before[-turns:], after
    raise RuntimeError("the chat never outgrew the context")


def _shifted_against_cold(engine: Backend, turns: int) -> int:
    """Greedy replies from the shifted cache, then from a cold evaluation of the same prompt."""
    session = ChatSession(engine, load_template("chat"), CHAT)
    identical = checked = 0
    for number in range(10_000):
        plan = session.plan(f"What comes after the number {number}?")
        warm = session.send(f"What comes after the number {number}?").run()  # shifts, and the chat goes on
        if plan.dropped_turns:
            reference.clear_cache(engine)
            cold = engine.generate(plan.tokens, CHAT, session.template.stop_strings()).run()
            identical += warm.completion.tokens == cold.tokens
            checked += 1
            if checked == turns:
                return identical
    return identical


def _reevaluated(usage) -> bool:
    return usage.cached_tokens < usage.prompt_tokens / 2


def _median_ttft(usages: list) -> float:
    return statistics.median(u.ttft_s for u in usages)
