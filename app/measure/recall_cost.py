"""What the recall and follow-up notes cost a long chat: rendering the prompt of a 2,000-message
chat, every other user message a question about the user, with the chat frame's notes and without
them (only the newest question looks back, so the two should be close). Pure Python, no
model: the prompt is rendered at every send, so any cost here grows with the conversation."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from app.scaffold import Message, load_template, render_pieces
from app.scaffold.language import load_language
from app.scaffold.memory import MemoryIndex

MESSAGES = 2000
MEMORY_MESSAGES = 10_000
_THINGS = (
    "cat",
    "dog",
    "friend",
    "car",
    "book",
    "garden",
    "street",
    "song",
    "teacher",
    "boat",
    "city",
    "film",
)
_QUESTIONS = ("What's my name again?", "What is my cat called?", "Where does my friend live?",
              "Which film did I like?", "What do I do for a living?", "What colour is my boat?")  # fmt: skip


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


def _long_history(n_messages: int) -> list[Message]:
    """Statements, questions and small talk over a varied vocabulary (names and numbers that
    never repeat, so the index grows as a real one does)."""
    turns = []
    for n in range(n_messages // 2):
        thing = _THINGS[n % len(_THINGS)]
        said = (f"My {thing} number {n} is called Name{n}.", f"I went to place{n} with my {thing} today.",
                f"What do you think about {thing}s?", f"A fact about the number {n}?")[n % 4]  # fmt: skip
        turns += [Message("user", said), Message("assistant", f"That is interesting, word{n}.")]
    return turns


def memory_figures(n_messages: int = MEMORY_MESSAGES, repeats: int = 5) -> dict:
    """What memory costs a chat of ``n_messages``: indexing it when it is opened, following it
    when one exchange is added (every turn), and finding what a question asks (every send)."""
    history = _long_history(n_messages)
    index = MemoryIndex(load_language("en"))
    started = time.perf_counter()
    index.follow(history[:-2])
    built = time.perf_counter() - started
    follows, lookups = [], []
    for _ in range(repeats):
        index.follow(history[:-2])
        started = time.perf_counter()
        index.follow(history)
        follows.append(time.perf_counter() - started)
        for question in _QUESTIONS:
            started = time.perf_counter()
            index.recall(question)
            lookups.append(time.perf_counter() - started)
    return {
        "memory_messages": n_messages,
        "memory_index_ms": round(built * 1000, 1),
        "memory_follow_ms": round(statistics.median(follows) * 1000, 2),
        "memory_lookup_ms": round(statistics.median(lookups) * 1000, 2),
        "memory_lookup_max_ms": round(max(lookups) * 1000, 2),
    }


def memory_window_figures(n_messages: int = MEMORY_MESSAGES, repeats: int = 5) -> dict:
    """The window's side of memory for a stored chat of ``n_messages``: building its index when
    the chat is opened (from the history file), and what each send then costs — walking the
    path's ids, reading its changed end, and the lookup."""
    import tempfile
    from pathlib import Path

    from app.service import ConversationService
    from app.store.chats import ChatStore
    from app.store.export import chain_export, import_json

    export = chain_export(_long_history(n_messages), "memory")
    with tempfile.TemporaryDirectory() as folder:
        store = ChatStore(Path(folder) / "history.db")
        try:
            [cid] = import_json(store, export)
            service, english = ConversationService(store), load_language("en")
            started = time.perf_counter()
            service.memory(cid, english)
            built = time.perf_counter() - started
            sends = []
            for _ in range(repeats):
                started = time.perf_counter()
                service.memory(cid, english).recall(_QUESTIONS[0])
                sends.append(time.perf_counter() - started)
        finally:
            store.close()
    return {
        "memory_window_build_s": round(built, 3),
        "memory_window_send_ms": round(statistics.median(sends) * 1000, 1),
    }
