"""What ``basechat serve`` costs over the engine itself: the same greedy reply through HTTP and
SSE with one client (``serve_gen_ratio``), a chat follow-up's time to first text through the chat
endpoint (``serve_ttft_warm_s``), and four clients at once, served in turn, against one
(``serve_4_clients_tps``: total tokens a second over one client's). The server runs in this process
on 127.0.0.1 around the bench's own engine; each client is a process of its own."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx2

from app.engine.base import PLAIN_GREEDY, Backend

COUNTING = "Counting from one upwards: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"


@contextmanager
def serving(engine: Backend, model_id: str) -> Iterator[str]:
    """The server the window runs, on a free port in a thread of this process; yields its address."""
    from app.server.hub import Hub
    from app.server.running import BackgroundServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = BackgroundServer(
        Hub(engine, model_id, "chat", replace(PLAIN_GREEDY, best_of=1)), "127.0.0.1", port
    )
    try:
        yield server.address
    finally:
        server.stop()


def _engine_tps(engine: Backend, n_tokens: int) -> float:
    prompt = engine.start_tokens() + engine.tokenize(COUNTING)
    started = time.perf_counter()
    done = engine.generate(prompt, replace(PLAIN_GREEDY, max_tokens=n_tokens, ignore_eos=True), []).run()
    return len(done.tokens) / (time.perf_counter() - started)


def _served_tps(url: str, n_tokens: int) -> float:
    """Tokens a second one client reads from a streamed completion. The client is a process of
    its own, as every real client is: in this one its reading would take turns with the engine's
    own Python for the interpreter lock, a cost no outside client puts on the server."""
    import subprocess
    import sys

    body = {"prompt": COUNTING, "max_tokens": n_tokens, "temperature": 0, "ignore_eos": True, "stream": True}
    done = subprocess.run([sys.executable, "-c", _CLIENT, f"{url}/v1/completions", json.dumps(body)],
                          capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    tokens, seconds = json.loads(done.stdout)
    return tokens / seconds


_CLIENT = """
import json, sys, time
import httpx2
started, tokens = time.perf_counter(), 0
with httpx2.stream("POST", sys.argv[1], json=json.loads(sys.argv[2]), timeout=300) as answer:
    for line in answer.iter_lines():
        if line.startswith("data: {"):
            tokens += bool(json.loads(line[6:])["choices"][0]["text"])
print(json.dumps([tokens, time.perf_counter() - started]))
"""


def _chat_ttft(url: str) -> float:
    """A follow-up in a chat whose earlier turns the previous request left in the cache."""
    messages = [{"role": "user", "content": "Hello! I live in Lisbon."},
                {"role": "assistant", "content": "Hello! Lisbon is a lovely city."},
                {"role": "user", "content": "What is the capital of France?"}]  # fmt: skip
    body = {"model": "basechat/chat", "messages": messages, "max_tokens": 8, "stream": True}
    httpx2.post(f"{url}/v1/chat/completions", json=body | {"stream": False}, timeout=300)  # warms the cache
    started = time.perf_counter()
    with httpx2.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                return time.perf_counter() - started
    return time.perf_counter() - started


def _four_clients_tps(url: str, n_tokens: int) -> float:
    """Total tokens a second when four clients ask at once (the server takes them in turn)."""
    threads = [threading.Thread(target=_served_tps, args=(url, n_tokens)) for _ in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 4 * n_tokens / (time.perf_counter() - started)


def serve_figures(engine: Backend, model_id: str, n_tokens: int, repeats: int) -> dict:
    with serving(engine, model_id) as url:
        _served_tps(url, 4)  # the first request's start-up
        pairs = [(_served_tps(url, n_tokens), _engine_tps(engine, n_tokens)) for _ in range(repeats)]
        ttft = statistics.median(_chat_ttft(url) for _ in range(repeats))
        one = statistics.median(served for served, _ in pairs)
        four = _four_clients_tps(url, n_tokens)
    return {
        "serve_gen_tps": round(one, 2),
        "serve_gen_ratio": round(statistics.median(s / e for s, e in pairs), 3),
        "serve_ttft_warm_s": round(ttft, 4),
        "serve_4_clients_tps": round(four / one, 3),
    }
