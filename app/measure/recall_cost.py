"""What the recall and follow-up notes cost a long chat: rendering the prompt of a 2,000-message
chat, every other user message a question about the user, with the chat frame's notes and without
them (only the newest question looks back, so the two should be close). Pure Python, no
model: the prompt is rendered at every send, so any cost here grows with the conversation."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from app.scaffold import Message, load_template, render_pieces

MESSAGES = 2000


def _history(n_messages: int) -> list[Message]:
    turns = []
    for n in range(n_messages // 2):
        said = (
            f"What is my cat number {n - 1} called?" if n % 2 == 0 else f"My cat number {n} is called Tom{n}."
        )
        turns += [Message("user", said), Message("assistant", "Okay.")]
    return turns


def recall_figures(repeats: int = 5, n_messages: int = MESSAGES) -> dict:
    chat = load_template("chat")
    history = _history(n_messages)

    def median_ms(template) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            render_pieces(template, history, "What is my cat called?")
            times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 1)

    return {
        "render_2000_messages_ms": median_ms(chat),
        "render_2000_messages_no_recall_ms": median_ms(replace(chat, recall_note="", followup_note="")),
    }
