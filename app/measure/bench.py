"""``basechat bench``: Basechat measured against llama.cpp itself, in one run.

Every figure is the median of several repetitions and, where a reference
exists, a ratio to it. Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from app.engine import reference
from app.engine.base import PLAIN_GREEDY, Backend
from app.engine.device import default_threads
from app.engine.factory import open_backend
from app.engine.preflight import kv_cache_bytes
from app.measure.group_cost import group_figures
from app.measure.history_cost import history_figures
from app.measure.lore import lorebook_figures
from app.measure.memory_cost import memory_note_figures, typeahead_figures
from app.measure.overflow import overflow_figures, remote_overflow_figures
from app.measure.recall_cost import (
    MEMORY_MESSAGES,
    MESSAGES,
    memory_figures,
    memory_window_figures,
    recall_figures,
)
from app.measure.serve_cost import serve_figures
from app.measure.speculation import lookup_figures, self_draft_figures

GREEDY = replace(PLAIN_GREEDY, ignore_eos=True)
COUNTING = "Counting from one upwards: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
ROOT = Path(__file__).resolve().parents[2]
LLAMA_BENCH = ROOT / ".bench" / "bin" / "llama-bench"
LLAMA_BATCHED = ROOT / ".bench" / "bin" / "llama-batched-bench"


def _median(measure: Callable[[], float], repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats))


def paired(
    ours: Callable[[], float], theirs: Callable[[], float], repeats: int
) -> tuple[float, float, float]:
    """Medians of both and the median of their ratio, taken in pairs whose order alternates, so a
    machine that speeds up or slows down during the run moves both sides of every ratio alike
    (two runs here moved a ratio by 14 % when all of one side came before all of the other)."""
    pairs = []
    for index in range(repeats):
        if index % 2:
            b = theirs()
            a = ours()
        else:
            a = ours()
            b = theirs()
        pairs.append((a, b))
    a_values, b_values = [a for a, _ in pairs], [b for _, b in pairs]
    ratio = statistics.median(a / b for a, b in pairs if b)
    return statistics.median(a_values), statistics.median(b_values), ratio


def _prompt(engine: Backend, text: str) -> list[int]:
    return engine.start_tokens() + engine.tokenize(text)


def generation_speed(engine: Backend, n_tokens: int, repeats: int) -> dict:
    """Basechat's streaming path (stop hold-back, UTF-8, callbacks) vs the bare loop."""
    from app.engine.reference import bare_generation_tps
    from app.scaffold import load_template

    prompt = _prompt(engine, COUNTING)
    stops = load_template("chat").stop_strings()

    def ours() -> float:
        reference.clear_cache(engine)
        generation = engine.generate(prompt, replace(GREEDY, max_tokens=n_tokens), stops)
        for _chunk in generation:
            pass  # the callback a window or terminal would run
        assert generation.result is not None
        return generation.result.usage.tokens_per_s

    gen, bare, ratio = paired(ours, lambda: bare_generation_tps(engine, prompt, n_tokens), repeats)
    return {
        "gen_tps": round(gen, 2),
        "lowlevel_gen_tps": round(bare, 2),
        "gen_ratio_lowlevel": round(ratio, 3),
    }


def loom_figures(engine: Backend, n_tokens: int, repeats: int) -> dict:
    """Four alternatives decoded together over one alone, and generation speed with each
    token's top-5 candidates recorded over without."""
    prompt = _prompt(engine, COUNTING)

    def speed(n_probs: int) -> float:
        result = engine.generate(prompt, replace(GREEDY, max_tokens=n_tokens, n_probs=n_probs), []).run()
        return result.usage.tokens_per_s

    on, _off, overhead = paired(lambda: speed(5), lambda: speed(0), repeats)
    return alternatives_figures(engine, n_tokens, repeats) | {
        "logprobs_gen_tps": round(on, 2), "logprobs_overhead": round(overhead, 3),
    }  # fmt: skip


def alternatives_figures(engine: Backend, n_tokens: int, repeats: int) -> dict:
    """Four alternatives over one: the same prompt (cached), the same length, sampled."""
    prompt = _prompt(engine, COUNTING)
    sampled = replace(GREEDY, temperature=0.8, seed=1, max_tokens=n_tokens)

    def alternatives(n: int) -> float:
        started = time.perf_counter()
        engine.generate_many(prompt, sampled, [], n).run()
        return time.perf_counter() - started

    four, one, ratio = paired(lambda: alternatives(4), lambda: alternatives(1), repeats)
    return {"alternatives_1_s": round(one, 3), "alternatives_4_s": round(four, 3),
            "alternatives_4_over_1": round(ratio, 3)}  # fmt: skip


def best_of_figures(engine: Backend, repeats: int) -> dict:
    """A short answer in the chat frame with the app's sampling, drawn once against four times
    (best_of): the whole reply's time, since a ranked reply shows when every draw has ended."""
    from app.chat import ChatSession
    from app.engine.base import SamplingParams
    from app.scaffold import load_template

    template = load_template("chat")

    def answer(best_of: int) -> float:
        session = ChatSession(engine, template, SamplingParams(seed=1, best_of=best_of))
        return session.ask("How many legs does a cat have?").completion.usage.total_s

    four, one, ratio = paired(lambda: answer(4), lambda: answer(1), repeats)
    figures = {"short_answer_best_of_1_s": round(one, 3), "short_answer_best_of_4_s": round(four, 3),
               "short_answer_best_of_4_over_1": round(ratio, 3)}  # fmt: skip
    return figures | first_text_figures(engine, repeats)


def first_text_figures(engine: Backend, repeats: int) -> dict:
    """Time from send to the first text a person sees, with the shipped best of 4 (what the draws
    agree on streams) against one draw's, for a greeting and a short question, from a cold cache."""
    out: dict = {}
    for name, message in (("greeting", "Hi there!"), ("question", "How many legs does a cat have?")):
        four, one, ratio = _first_text_pair(engine, message, repeats)
        key = f"first_text_{name}"
        out |= {f"{key}_best_of_4_s": round(four, 3), f"{key}_best_of_1_s": round(one, 3),
                f"{key}_ratio": round(ratio, 3)}  # fmt: skip
    return out


def _first_text_pair(engine: Backend, message: str, repeats: int) -> tuple[float, float, float]:
    seeds = itertools.count()

    def drawn(best_of: int) -> Callable[[], float]:
        return lambda: _first_text_s(engine, message, best_of, next(seeds))

    return paired(drawn(4), drawn(1), repeats)


def _first_text_s(engine: Backend, message: str, best_of: int, seed: int) -> float:
    from app.chat import ChatSession
    from app.engine.base import SamplingParams
    from app.scaffold import load_template

    reference.clear_cache(engine)
    session = ChatSession(engine, load_template("chat"), SamplingParams(seed=seed, best_of=best_of))
    started = time.perf_counter()
    stream = session.send(message)
    first = next((time.perf_counter() - started for chunk in stream if chunk), time.perf_counter() - started)
    stream.cancel()
    for _ in stream:
        pass
    return first


def prompt_speed(engine: Backend, repeats: int) -> dict:
    from app.engine.reference import bare_prompt_tps

    prompt = _prompt(engine, "The quick brown fox jumps over the lazy dog. " * 100)[:1000]

    def ours() -> float:
        reference.clear_cache(engine)
        result = engine.generate(prompt, replace(GREEDY, max_tokens=1), []).run()
        return len(prompt) / result.usage.prompt_eval_s

    ours_tps, bare, ratio = paired(ours, lambda: bare_prompt_tps(engine, prompt), repeats)
    return {"prompt_tps": round(ours_tps, 1), "lowlevel_prompt_tps": round(bare, 1),
            "prompt_ratio_lowlevel": round(ratio, 3)}  # fmt: skip


def follow_up_latency(engine: Backend, turns: int, repeats: int) -> dict:
    """Time to first token of the last turn of a long conversation: prefix cache vs none."""
    plan, previous = _long_conversation(engine, turns)

    def warm() -> float:
        reference.clear_cache(engine)
        engine.generate(previous.tokens, replace(GREEDY, max_tokens=1), []).run()
        return engine.generate(plan.tokens, replace(GREEDY, max_tokens=1), []).run().usage.ttft_s

    def cold() -> float:
        reference.clear_cache(engine)
        return engine.generate(plan.tokens, replace(GREEDY, max_tokens=1), []).run().usage.ttft_s

    w, c = _median(warm, repeats), _median(cold, repeats)
    return {"conversation_tokens": len(plan.tokens), "ttft_warm_s": round(w, 4), "ttft_cold_s": round(c, 4),
            "ttft_warm_over_cold": round(w / c, 3)}  # fmt: skip


def first_token_after_restart(path: Path, state_dir: str | None, turns: int) -> float:

    with closing(open_backend(path, state_dir=Path(state_dir) if state_dir else None)) as engine:
        plan, _previous = _long_conversation(engine, turns)
        one = replace(GREEDY, max_tokens=1)
        return engine.generate(plan.tokens, one, []).run().usage.ttft_s


def resume_figures(path: Path, turns: int, repeats: int) -> dict:
    """Reopening a long chat in a new process, and switching between two long chats, with saved
    KV states against the cold path; the size of a state and the time to save one."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="basechat-kv-"))
    with closing(open_backend(path, state_dir=folder)) as engine:
        _plan, previous = _long_conversation(engine, turns)
        reference.clear_cache(engine)
        engine.generate(previous.tokens, replace(GREEDY, max_tokens=1), []).run()
        started = time.perf_counter()
        engine.save_state()
        save_ms = (time.perf_counter() - started) * 1000
        reference.flush_states(engine)
        size = max(p.stat().st_size for p in folder.glob("*.kv"))
        switch = _switch_ttft(engine, turns, repeats)
    code = "from app.measure.probes import resume_probe; resume_probe({!r}, {!r}, {})"
    restored = _median(lambda: _child(code.format(str(path), str(folder), turns))["ttft_s"], repeats)
    cold = _median(lambda: _child(code.format(str(path), "", turns))["ttft_s"], repeats)
    return {
        "ttft_restored_s": round(restored, 4), "ttft_restart_cold_s": round(cold, 4),
        "ttft_restored_over_cold": round(restored / cold, 3), **switch,
        "kv_state_mb_per_1k_tokens": round(size / 1e6 / len(previous.tokens) * 1000, 2),
        "kv_save_ms": round(save_ms, 2),
    }  # fmt: skip


def _switch_ttft(engine: Backend, turns: int, repeats: int) -> dict:
    """Alternate between two long chats: each new message finds its chat's state."""
    from app.chat import ChatSession
    from app.scaffold import load_template

    first = ChatSession(engine, load_template("chat"), replace(GREEDY, max_tokens=1), _history(turns, 0))
    second = ChatSession(engine, first.template, first.params, _history(turns, 100))
    for session in (first, second):
        session.ask("Hello again.")  # each chat's state is saved after its reply

    def switch() -> float:
        second.history = second.history[:-2]
        second.ask("Hello again.")
        first.history = first.history[:-2]
        return first.ask("Hello again.").completion.usage.ttft_s

    def cold() -> float:
        reference.clear_cache(engine)
        plan = first.plan("Hello again.")
        with reference.without_saved_states(engine):
            return engine.generate(plan.tokens, first.params, []).run().usage.ttft_s

    w, c = _median(switch, repeats), _median(cold, repeats)
    return {
        "switch_ttft_s": round(w, 4),
        "switch_ttft_cold_s": round(c, 4),
        "switch_ttft_over_cold": round(w / c, 3),
    }


def _history(turns: int, offset: int):
    from app.scaffold import Message

    history = []
    for i in range(offset, offset + turns - 1):
        history += [
            Message("user", f"Tell me one fact about the number {i}, with a little history around it."),
            Message("assistant", f"The number {i} appears in many counting systems; " * 8),
        ]
    return history


def _long_conversation(engine, turns: int):
    """A ``turns``-turn chat: the last turn's prompt, and the turn before's."""
    from app.chat import ChatSession
    from app.scaffold import load_template

    history = _history(turns, 0)
    session = ChatSession(engine, load_template("chat"), replace(GREEDY, max_tokens=1), history)
    plan = session.plan("And what is the capital of France?")
    previous = ChatSession(engine, session.template, session.params, history[:-2]).plan(history[-2].text)
    return plan, previous


def per_token_cost(engine: Backend, n_tokens: int, window: int) -> dict:
    """Milliseconds per token early in one long reply vs at its end, and the same for the bare
    loop: attention over a longer context costs llama.cpp itself more, whatever Python does."""
    from app.engine.reference import bare_token_times

    prompt = _prompt(engine, COUNTING)
    reference.clear_cache(engine)
    generation = engine.generate(prompt, replace(GREEDY, max_tokens=n_tokens), ["\nUser:"])
    stamps = [time.perf_counter()]
    for _chunk in generation:
        stamps.append(time.perf_counter())
    gaps = [b - a for a, b in itertools.pairwise(stamps[1:])]  # from the first token on
    early, late = gaps[:window], gaps[-window:]
    ratio = (sum(late) / len(late)) / (sum(early) / len(early))
    bare = bare_token_times(engine, prompt, n_tokens)
    bare_ratio = statistics.mean(bare[-window:]) / statistics.mean(bare[1 : window + 1])
    return {"per_token_ms_early": round(1000 * statistics.mean(early), 3),
            "per_token_ms_late": round(1000 * statistics.mean(late), 3),
            "per_token_cost_ratio": round(ratio, 3), "per_token_reply_tokens": len(gaps) + 1,
            "lowlevel_per_token_cost_ratio": round(bare_ratio, 3),
            "per_token_cost_ratio_vs_lowlevel": round(ratio / bare_ratio, 3)}  # fmt: skip


def thread_choice(path: Path, n_tokens: int, repeats: int) -> dict:
    prompt_text = COUNTING
    results = {}
    for threads in range(1, (os.cpu_count() or 1) + 1):
        with closing(open_backend(path, n_threads=threads)) as engine:
            prompt = _prompt(engine, prompt_text)

            def once(engine=engine, prompt=prompt) -> float:
                reference.clear_cache(engine)
                result = engine.generate(prompt, replace(GREEDY, max_tokens=n_tokens), []).run()
                return result.usage.tokens_per_s

            results[threads] = _median(once, repeats)
    best = max(results, key=lambda threads: results[threads])
    default = default_threads()
    return {"threads_default": default, "threads_best": best,
            "threads_tps": {str(k): round(v, 2) for k, v in results.items()},
            "threads_ratio_best": round(results.get(default, 0.0) / results[best], 3)}  # fmt: skip


def llama_bench(path: Path, threads: int) -> tuple[float, float]:
    """llama.cpp's own generation and prompt speeds (tg128, pp1000), one repetition."""
    command = [str(LLAMA_BENCH), "-m", str(path), "-t", str(threads), "-p", "1000", "-n", "128", "-r", "1",
               "-o", "json"]  # fmt: skip
    runs = json.loads(subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout)
    gen = next(r["avg_ts"] for r in runs if r["n_gen"] > 0)
    prompt = next(r["avg_ts"] for r in runs if r["n_prompt"] > 0)
    return gen, prompt


def versus_llama_bench(engine: Backend, path: Path, repeats: int) -> dict:
    """Basechat and llama-bench taken in turns, so both see the same machine load; medians.
    Null when ``make bench-native`` has not built llama-bench."""
    if not LLAMA_BENCH.is_file():
        return dict.fromkeys(["llama_bench_gen_tps", "llama_bench_prompt_tps", "gen_ratio_llama_bench",
                              "prompt_ratio_llama_bench"])  # fmt: skip
    theirs, ours = [], []
    for _ in range(repeats):
        theirs.append(llama_bench(path, engine.describe().threads or 1))
        ours.append((generation_speed(engine, 128, 1)["gen_tps"], prompt_speed(engine, 1)["prompt_tps"]))
    gen, prompt = (statistics.median(t[0] for t in theirs), statistics.median(t[1] for t in theirs))
    our_gen, our_prompt = (statistics.median(o[0] for o in ours), statistics.median(o[1] for o in ours))
    return {"llama_bench_gen_tps": round(gen, 2), "llama_bench_prompt_tps": round(prompt, 1),
            "gen_ratio_llama_bench": round(our_gen / gen, 3),
            "prompt_ratio_llama_bench": round(our_prompt / prompt, 3)}  # fmt: skip


def llama_batched(path: Path, threads: int, n_ctx: int, n_prompt: int, n_gen: int) -> float:
    """llama.cpp's own time for 4 sequences over 1 (``llama-batched-bench``: the prompt shared,
    one unified cache, as the loom decodes them): the generation part, which is what differs."""
    command = [str(LLAMA_BATCHED), "-m", str(path), "-t", str(threads), "-c", str(n_ctx), "-b", "512",
               "-ub", "512", "-npp", str(n_prompt), "-ntg", str(n_gen), "-npl", "1,4", "-pps", "--kv-unified",
               "--output-format", "jsonl"]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout
    rows = {
        row["pl"]: row
        for row in map(json.loads, (line for line in output.splitlines() if line.startswith("{")))
    }
    return rows[4]["t_tg"] / rows[1]["t_tg"]


def alternatives_versus_llama(engine: Backend, path: Path, n_gen: int, repeats: int) -> dict:
    """Basechat's four-alternatives-over-one time ratio over llama-batched-bench's for the same
    prompt length and reply length, the two taken in turns: the machine's own batching gain
    cancels, what is left is Basechat's cost per alternative. Null without ``make bench-native``."""
    if not LLAMA_BATCHED.is_file():
        return {"alternatives_vs_llama": None, "llama_batched_4_over_1": None}
    threads, prompt = engine.describe().threads or 1, _prompt(engine, COUNTING)

    def ours() -> float:
        return alternatives_figures(engine, n_gen, 1)["alternatives_4_over_1"]

    def theirs() -> float:
        return llama_batched(path, threads, engine.n_ctx, len(prompt), n_gen)

    _ours, their_ratio, ratio = paired(ours, theirs, repeats)
    return {"alternatives_vs_llama": round(ratio, 3), "llama_batched_4_over_1": round(their_ratio, 3)}


def _child(code: str) -> dict:
    """Run a probe in a fresh process (start-up and memory need one) and read its JSON."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"error": (result.stderr.strip().splitlines() or ["probe failed"])[-1]}
    return json.loads(lines[-1])


def startup() -> dict:
    return _child("from app.ui.probes import startup_probe; startup_probe()")


def memory(path: Path, n_tokens: int) -> dict:
    return _child(f"from app.measure.probes import memory_probe; memory_probe({str(path)!r}, {n_tokens})")


def gui(path: Path, n_tokens: int) -> dict:
    return _child(f"from app.ui.probes import gui_probe; gui_probe({str(path)!r}, {n_tokens})")


def long_chat(path: Path, n_messages: int, n_tokens: int) -> dict:
    call = f"long_chat_probe({str(path)!r}, {n_messages}, {n_tokens})"
    return _child(f"from app.ui.probes import long_chat_probe; {call}")


# (repeats, generated tokens, chat turns, long-reply tokens, its window, thread-test tokens)
PAIRED_REPEATS = 7  # ratios to the bare loop: three full runs here stayed within ±1.5 % with 7 pairs
SIZES = {"full": (5, 128, 12, 2048, 64, 128), "quick": (2, 64, 6, 400, 32, 32), "smoke": (1, 8, 3, 40, 4, 8)}


def run_bench(
    path: Path, model_id: str, quick: bool, progress: Callable[[str], None], smoke: bool = False
) -> dict:
    """``smoke``: the smallest inputs, to check that every figure is produced (they mean nothing)."""
    repeats, n_gen, turns, n_long, window, n_threads = SIZES[
        "smoke" if smoke else "quick" if quick else "full"
    ]
    quick = quick or smoke
    out: dict = {"model": model_id, "machine": _machine(), "quick": quick}
    with closing(open_backend(path)) as engine:
        out["n_ctx"], out["threads"] = engine.n_ctx, engine.describe().threads
        progress("generation speed")
        out |= generation_speed(
            engine, n_gen, PAIRED_REPEATS if not quick else repeats
        )  # llama-bench: -n 128
        progress("follow-up latency")
        out |= follow_up_latency(engine, turns, repeats)
        progress("resume from saved KV state")
        out |= resume_figures(path, turns, repeats)
        progress("per-token cost")
        out |= per_token_cost(engine, n_long, window)
        progress("alternatives and token probabilities")
        out |= loom_figures(engine, n_gen, repeats)
        out |= best_of_figures(engine, repeats)
        out |= lookup_figures(engine, 1 if quick else 3, progress, smoke)
        progress("rendering a 2,000-message chat")
        out |= recall_figures(repeats if quick else 5, 100 if smoke else MESSAGES)
        progress("memory over a 10,000-message chat")
        out |= memory_figures(200 if smoke else MEMORY_MESSAGES)
        out |= memory_window_figures(200 if smoke else MEMORY_MESSAGES)
        progress("a lorebook firing three entries")
        out |= lorebook_figures(engine, repeats if quick else PAIRED_REPEATS, paired)
        progress("a memory note from the chat's first message")
        out |= memory_note_figures(engine, repeats if quick else PAIRED_REPEATS, paired)
        out |= typeahead_figures(engine, repeats if quick else PAIRED_REPEATS, paired)
        progress("choosing who speaks next in a group")
        out |= group_figures(engine, repeats if quick else PAIRED_REPEATS, paired)
        progress("the same model through basechat serve")
        out |= serve_figures(engine, model_id, n_gen, repeats)
        progress("a long history: showing, deleting, a slow lorebook")
        out |= history_figures(repeats, smoke)
        out |= {} if quick else _against_llama(engine, path, n_gen, progress)
    progress("a chat past its context")
    out |= overflow_figures(path, 2048 if not smoke else 1024, 10 if not smoke else 2)
    progress("thread choice")
    out |= thread_choice(path, n_threads, repeats)
    out |= _quick_nulls() if quick else _slow_figures(path, out, progress)
    return out


def _against_llama(engine: Backend, path: Path, n_gen: int, progress: Callable[[str], None]) -> dict:
    """The full run's figures beside llama.cpp's own tools, taken in turns with them."""
    progress("prompt speed")
    figures = prompt_speed(engine, PAIRED_REPEATS)
    progress("llama-bench, in turns with Basechat")
    figures |= versus_llama_bench(engine, path, 3)
    progress("alternatives, in turns with llama-batched-bench")
    figures |= alternatives_versus_llama(engine, path, n_gen, 3)
    return figures | self_draft_figures(engine, path, progress)


def _slow_figures(path: Path, out: dict, progress: Callable[[str], None]) -> dict:
    figures: dict = {}
    progress("start-up")
    figures |= startup()
    progress("memory")
    figures |= memory(path, 1024)
    progress("window responsiveness")
    figures |= gui(path, 1000)
    progress("a 2,000-message chat in the window")
    figures |= long_chat(path, 2000, 200)
    return figures


def _quick_nulls() -> dict:
    keys = ["gen_ratio_llama_bench", "prompt_ratio_llama_bench", "llama_bench_gen_tps",
            "llama_bench_prompt_tps", "prompt_tps", "startup_window_s", "startup_model_s",
            "rss_overhead_mb", "gui_max_stall_ms", "gui_token_cost_ratio",
            "gui_alternatives_max_stall_ms", "long_chat_open_s", "long_chat_switch_s",
            "long_chat_stream_max_stall_ms", "long_chat_rss_mb", "alternatives_vs_llama",
            "llama_batched_4_over_1", "draft_self_acceptance", "draft_self_speedup",
            "draft_self_identical"]  # fmt: skip
    return dict.fromkeys(keys)


def _machine() -> dict:
    import psutil

    return {"cpu": platform.processor() or platform.machine(), "system": platform.platform(),
            "physical_cores": psutil.cpu_count(logical=False), "logical_cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1)}  # fmt: skip


def run_remote_bench(server, quick: bool, progress: Callable[[str], None]) -> dict:
    """The remote engine against the server's own figures: is the client the bottleneck,
    and does the server's prompt cache serve follow-up turns?"""
    repeats = 2 if quick else 5
    engine = open_backend(server=server)
    try:
        info = engine.describe()
        out: dict = {"engine": "remote", "server": info.location, "model": info.name, "quick": quick}
        progress("remote generation speed")
        out |= remote_generation_speed(engine, 64 if quick else 128, repeats)
        progress("remote follow-up latency")
        out |= remote_follow_up_latency(engine, 6 if quick else 12, repeats)
        progress("remote: a chat past its context")
        out |= remote_overflow_figures(server, 1024 if quick else 2048, 4 if quick else 10)
    finally:
        engine.close()
    return out


def remote_generation_speed(engine, n_tokens: int, repeats: int) -> dict:
    prompt = _prompt(engine, COUNTING)
    ours, theirs = [], []
    for _ in range(repeats):
        generation = engine.generate(prompt, replace(GREEDY, max_tokens=n_tokens), [])
        for _chunk in generation:
            pass
        ours.append(generation.result.usage.tokens_per_s)
        theirs.append(engine.last_timings.get("predicted_per_second") or float("nan"))
    gen, server = statistics.median(ours), statistics.median(theirs)
    return {"remote_gen_tps": round(gen, 2), "server_gen_tps": round(server, 2),
            "remote_gen_ratio_server": round(gen / server, 3)}  # fmt: skip


def remote_follow_up_latency(engine, turns: int, repeats: int) -> dict:
    """Warm: the previous turn's prompt is in the server's slot. Cold: the prompt cache is off
    for that request (llama-server also restores whole earlier prompts from RAM)."""
    plan, previous = _long_conversation(engine, turns)
    one = replace(GREEDY, max_tokens=1)

    def warm() -> float:
        engine.generate(previous.tokens, one, []).run()
        return engine.generate(plan.tokens, one, []).run().usage.ttft_s

    def cold() -> float:
        engine.cache_prompt = False
        try:
            return engine.generate(plan.tokens, one, []).run().usage.ttft_s
        finally:
            engine.cache_prompt = True

    w, c = _median(warm, repeats), _median(cold, repeats)
    return {"remote_conversation_tokens": len(plan.tokens), "remote_ttft_warm_s": round(w, 4),
            "remote_ttft_cold_s": round(c, 4), "remote_ttft_warm_over_cold": round(w / c, 3)}  # fmt: skip


def kv_bytes_for(path: Path, n_ctx: int) -> int:
    from app.engine.gguf_header import read_gguf_header

    return kv_cache_bytes(read_gguf_header(path), n_ctx)
