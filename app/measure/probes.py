"""Measurements that need a process of their own; each prints one JSON line.

Run by ``app.measure.bench`` in a child process, so start-up time and peak memory are
those of a fresh Basechat, not of the benchmark around it. The probes that need the window
live with it, in ``app.ui.probes``.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path


def _since_process_start() -> float:
    import psutil

    return time.time() - psutil.Process().create_time()


def memory_probe(path: str, n_tokens: int) -> None:
    """Peak RSS against weights plus KV cache, with the engine as the window opens it (saved states
    on): three chats of a few turns each (their states fill the RAM cache), then a long reply."""
    import tempfile
    from contextlib import closing

    from app.chat import ChatSession
    from app.engine.factory import open_backend
    from app.measure.bench import COUNTING, GREEDY, kv_bytes_for
    from app.scaffold import DEFAULT_TEMPLATE, load_template

    short = GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": 48})
    states = tempfile.TemporaryDirectory(prefix="basechat-memory-")  # the states go with the probe
    with states, closing(open_backend(Path(path), state_dir=Path(states.name))) as engine:
        for chat in range(3):
            session = ChatSession(engine, load_template(DEFAULT_TEMPLATE), short)
            for turn in range(4):
                session.ask(f"Chat {chat}, question {turn}: what do you know about rivers?")
        prompt = engine.start_tokens() + engine.tokenize(COUNTING)
        engine.generate(prompt, GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": n_tokens}), []).run()
        peak = _peak_rss()
        expected = Path(path).stat().st_size + kv_bytes_for(Path(path), engine.n_ctx)
        state_ram = engine.describe().state_ram_mb
    mb = 1024**2
    print(json.dumps({"rss_peak_mb": round(peak / mb, 1), "model_plus_kv_mb": round(expected / mb, 1),
                      "rss_overhead_mb": round((peak - expected) / mb, 1),
                      "state_ram_cap_mb": state_ram}))  # fmt: skip


def _peak_rss() -> int:
    """This process's own peak RSS in bytes. Linux's ``ru_maxrss`` keeps the parent's peak across
    fork and exec, so a probe run from the bench (which holds a model) reported the bench's own
    RSS: 631 MB of "overhead" that was never Basechat's. ``VmHWM`` is this program's alone."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS


def resume_probe(path: str, state_dir: str, turns: int) -> None:
    """Time to first token for a new message in a long chat, in a fresh process: with the
    saved KV state in ``state_dir`` (empty string: none, the cold path)."""
    from app.measure.bench import first_token_after_restart

    print(json.dumps({"ttft_s": first_token_after_restart(Path(path), state_dir or None, turns)}))
