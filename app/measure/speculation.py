"""Speculative decoding measured: tokens per second with drafting over without, on text that
repeats its context (a copy-heavy set: rewrite a paragraph with one change, continue a pattern,
repeat code with an edit — each through the chat and through the notebook) and on ordinary chat
questions (the eval's QA set), greedy, with the outputs compared token for token.

Drafting on and off are taken in turns, item by item, so both see the same machine load.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.chat import ChatSession, raw_generation
from app.engine.base import PLAIN_GREEDY, Backend, Completion, SamplingParams
from app.paths import resources_dir
from app.scaffold import load_template

GREEDY_CHAT = replace(PLAIN_GREEDY, max_tokens=160)
QA_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "qa.jsonl"


@dataclass
class Tally:
    """One drafting choice over a set: tokens, generation seconds, drafts, and each output."""

    tokens: int = 0
    seconds: float = 0.0
    drafted: int = 0
    accepted: int = 0
    outputs: list[tuple[int, ...]] = field(default_factory=list)

    def add(self, completion: Completion) -> None:
        usage = completion.usage
        self.tokens += usage.completion_tokens
        self.seconds += usage.completion_tokens / usage.tokens_per_s if usage.tokens_per_s else 0.0
        self.drafted += usage.drafted_tokens
        self.accepted += usage.accepted_tokens
        self.outputs.append(completion.tokens)

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def copy_prompts() -> list[tuple[str, str]]:
    """(path, text) for each copy-heavy item: "chat" is a message, "notebook" a document."""
    lines = (resources_dir() / "bench" / "copy.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    return [(path, item[path]) for item in items for path in ("chat", "notebook")]


def chat_prompts(limit: int = 33) -> list[tuple[str, str]]:
    """Ordinary chat questions: the eval's QA set (its first ``limit``)."""
    if not QA_SET.exists():  # an installed app has no test data
        return []
    lines = QA_SET.read_text(encoding="utf-8").splitlines()[:limit]
    return [("chat", json.loads(line)["question"]) for line in lines if line.strip()]


def complete(engine: Backend, path: str, text: str, params: SamplingParams) -> Completion:
    """One item the way the window runs it: a chat message in a fresh chat, or a notebook."""
    if path == "notebook":
        return raw_generation(engine, text, params).run().completion
    return ChatSession(engine, load_template("chat"), params).ask(text).completion


def compare(
    engine: Backend, items: list[tuple[str, str]], choices: list[str], repeats: int,
    params: SamplingParams = GREEDY_CHAT, always: bool = False,
) -> list[list[Tally]]:  # fmt: skip
    """For each repeat, a Tally per drafting choice; the choices alternate item by item."""
    runs = []
    for _ in range(repeats):
        tallies = [Tally() for _ in choices]
        for path, text in items:
            for choice, tally in zip(choices, tallies, strict=True):
                engine.use_draft(choice, always=always)
                tally.add(complete(engine, path, text, params))
        runs.append(tallies)
    engine.use_draft("off")
    return runs


def speedup(runs: list[list[Tally]]) -> float:
    """Median over repeats of (tokens/s with the second choice) / (with the first)."""
    return statistics.median(run[1].tps / run[0].tps for run in runs if run[0].tps)


def identical(runs: list[list[Tally]]) -> int:
    """Items whose output was the same token for token with and without drafting (first run)."""
    plain, drafted = runs[0][0].outputs, runs[0][1].outputs
    return sum(a == b for a, b in zip(plain, drafted, strict=True))


def acceptance(tally: Tally) -> float | None:
    return round(tally.accepted / tally.drafted, 3) if tally.drafted else None


def lookup_figures(
    engine: Backend, repeats: int, progress: Callable[[str], None], smoke: bool = False
) -> dict:
    """``lookup_speedup_copy`` / ``_chat``: prompt lookup over no drafting, with acceptance.
    ``smoke``: two items of each set, short replies (the figures then mean nothing)."""
    params = replace(GREEDY_CHAT, max_tokens=16) if smoke else GREEDY_CHAT
    progress("prompt lookup: copy-heavy set")
    copy = copy_prompts()[: 2 if smoke else None]
    copy_runs = compare(engine, copy, ["off", "lookup"], repeats, params)
    progress("prompt lookup: chat questions")
    chat = chat_prompts(2 if smoke else 33)
    chat_runs = compare(engine, chat, ["off", "lookup"], repeats, params) if chat else []
    return {
        "lookup_speedup_copy": round(speedup(copy_runs), 3),
        "lookup_acceptance_copy": acceptance(copy_runs[0][1]),
        "lookup_identical_copy": f"{identical(copy_runs)}/{len(copy)}",
        "lookup_gen_tps_copy": round(copy_runs[0][1].tps, 1),
        "lookup_speedup_chat": round(speedup(chat_runs), 3) if chat_runs else None,
        "lookup_acceptance_chat": acceptance(chat_runs[0][1]) if chat_runs else None,
        "lookup_identical_chat": f"{identical(chat_runs)}/{len(chat)}" if chat_runs else None,
    }


def self_draft_figures(engine: Backend, model: Path, progress: Callable[[str], None]) -> dict:
    """The default model drafting for itself, every draft checked: the acceptance ceiling of the
    draft-model path and its overhead (a draft as costly as the target can only be slower)."""
    progress("draft model: the model drafting for itself")
    items = copy_prompts()[:4] + chat_prompts(8)
    params = replace(GREEDY_CHAT, max_tokens=96)
    runs = compare(engine, items, ["off", str(model)], 1, params, always=True)
    return {
        "draft_self_acceptance": acceptance(runs[0][1]),
        "draft_self_speedup": round(speedup(runs), 3),
        "draft_self_identical": f"{identical(runs)}/{len(items)}",
    }
