"""The README's performance plot: time to first token and tokens/s per turn, warm vs cold.

A 12-turn conversation on the default model, once with the prefix cache (as Basechat
runs) and once with the cache cleared before every turn.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from pathlib import Path

from app.chat import ChatSession
from app.engine import reference
from app.engine.base import PLAIN_GREEDY, Backend
from app.engine.factory import open_backend
from app.scaffold import load_template

QUESTIONS = [
    "Hi! I'm planning a trip to Italy.", "What is the capital of Italy?", "What food is it famous for?",
    "Which river flows through Rome?", "How old is the Colosseum?", "What language do they speak?",
    "What currency do they use?", "Which city is famous for canals?", "What is the tallest mountain there?",
    "Who painted the Sistine Chapel ceiling?", "What is a good souvenir?", "Thanks! Where was I going?",
]  # fmt: skip


def per_turn(engine: Backend, cached: bool) -> list[tuple[float, float, int]]:
    """(ttft seconds, tokens/s, prompt tokens) for each turn."""
    params = replace(PLAIN_GREEDY, max_tokens=48)
    session = ChatSession(engine, load_template("chat"), params)
    reference.clear_cache(engine)
    rows = []
    for question in QUESTIONS:
        if not cached:
            reference.clear_cache(engine)
        reply = session.ask(question)
        usage = reply.completion.usage
        rows.append((usage.ttft_s, usage.tokens_per_s, usage.prompt_tokens))
    return rows


def plot(path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with closing(open_backend(path)) as engine:
        warm, cold = per_turn(engine, True), per_turn(engine, False)
    turns = range(1, len(QUESTIONS) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(turns, [1000 * r[0] for r in cold], "o-", label="cache cleared (cold)")
    left.plot(turns, [1000 * r[0] for r in warm], "o-", label="prefix cache (Basechat)")
    left.set(title="Time to first token", xlabel="turn", ylabel="ms")
    left.legend()
    right.plot(turns, [r[1] for r in cold], "o-", label="cold")
    right.plot(turns, [r[1] for r in warm], "o-", label="warm")
    right.set(title="Generation speed", xlabel="turn", ylabel="tokens/s", ylim=(0, None))
    right.legend()
    fig.suptitle(
        f"Gemma 3 270M base, {engine.describe().threads} threads, CPU — prompt grows to {warm[-1][2]} tokens"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
