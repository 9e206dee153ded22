"""What a long history costs: showing a 2,000-turn chat kept among 10,000 and among 100,000 stored
messages (the work of ``chats show`` and the Markdown export, without the process start), deleting
a 5,000-turn chat, and scanning a message against a 1,000-entry lorebook of slow pattern keys.

Showing should grow with the chat, never with the history: the two sizes are measured side by side,
and their ratio is the figure to watch. The history is built in a temporary folder by the same
import a person's export goes through.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from app.scaffold.lorebook import Lorebook, LoreEntry, scan
from app.store import ChatStore
from app.store.export import import_json, markdown_of

SLOW_KEY = r"/(a|aa)+$b/"  # backtracks on a run of a's: each key takes its full time limit


def _chain(turns: int, title: str) -> dict:
    now = time.time()
    messages = [{"id": i, "parent": i - 1 if i else None, "position": i, "role": ("user", "assistant")[i % 2],
                 "text": f"Turn {i} of {title}: a line of ordinary chat about the day.", "status": "done",
                 "created_at": now, "chosen": True} for i in range(turns)]  # fmt: skip
    return {"title": title, "created_at": now, "updated_at": now, "template": "chat", "messages": messages}


def _history(store: ChatStore, messages: int, chat_turns: int) -> int:
    """``messages`` stored in all, in chats of 1,000 turns; returns the ``chat_turns`` chat's id."""
    others = [_chain(1000, f"other {n}") for n in range(max(0, messages - chat_turns) // 1000)]
    export = {"format": "basechat.conversations", "version": 2, "conversations": [*others]}
    if others:
        import_json(store, export)
    [chat] = import_json(store, export | {"conversations": [_chain(chat_turns, "the long chat")]})
    return chat


def _show_seconds(folder: Path, history: int, chat_turns: int, repeats: int) -> float:
    store = ChatStore(folder / f"show-{history}.db")
    chat = _history(store, history, chat_turns)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        markdown_of(store, chat)
        times.append(time.perf_counter() - started)
    store.close()
    return statistics.median(times)


def _delete_seconds(folder: Path, turns: int) -> float:
    store = ChatStore(folder / "delete.db")
    chat = _history(store, turns, turns)
    started = time.perf_counter()
    store.delete(chat)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def _lore_scan_ms(entries: int) -> float:
    book = Lorebook(tuple(LoreEntry(f"Entry {n}.", keys=(SLOW_KEY,)) for n in range(entries)))
    scan(Lorebook((LoreEntry("Warm.", keys=("/warm/",)),)), ["warm"])  # the pattern module's import
    started = time.perf_counter()
    scan(book, ["a" * 3000])
    return 1000 * (time.perf_counter() - started)


def history_figures(repeats: int, smoke: bool = False) -> dict:
    small, large, chat, doomed, entries = (
        (200, 2000, 100, 500, 50) if smoke else (10_000, 100_000, 2000, 5000, 1000)
    )
    with tempfile.TemporaryDirectory() as folder:
        shown_small = _show_seconds(Path(folder), small, chat, repeats)
        shown_large = _show_seconds(Path(folder), large, chat, repeats)
        deleted = _delete_seconds(Path(folder), doomed)
    return {
        "show_2000_in_10k_s": round(shown_small, 4), "show_2000_in_100k_s": round(shown_large, 4),
        "show_history_growth": round(shown_large / shown_small, 3) if shown_small else None,
        "delete_5000_s": round(deleted, 4), "lore_scan_ms": round(_lore_scan_ms(entries), 1),
    }  # fmt: skip
