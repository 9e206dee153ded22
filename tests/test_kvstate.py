"""Saved KV state with the real model: restored conversations answer as a live cache would, a
damaged or foreign state falls back to the cold path, the disk cap holds, and the sliding-window
trap (a restored Gemma state cut back too far) never gives a wrong reply."""

from __future__ import annotations

import json
import threading

import pytest

from app.chat import ChatSession
from app.engine.base import SamplingParams
from app.engine.kvstate import KVStateStore
from app.engine.llama import LlamaEngine
from app.scaffold import Message, render_pieces
from tests.helpers import basechat

pytestmark = pytest.mark.model
GREEDY = SamplingParams(temperature=0.0, max_tokens=40)


def long_history(turns: int) -> list[Message]:
    history = []
    for i in range(turns):
        history += [
            Message("user", f"Tell me one fact about the number {i}, with a little history."),
            Message("assistant", f"The number {i} appears in many counting systems; " * 3),
        ]
    return history


@pytest.fixture(scope="module")
def template():
    """A compact frame (the chat frame before round two, about 180 tokens), so a short chat fits
    inside Gemma's 512-token sliding window where these tests need it to."""
    from app.scaffold import load_template
    from tests.conftest import ROOT

    return load_template(ROOT / "tests" / "data" / "compact-frame.toml")


@pytest.fixture
def states(tmp_path):
    return tmp_path / "kv"


def save_history_state(model_path, states, template, history) -> None:
    """A saved state of ``history`` (the chat before its next message), as a past session left it."""
    engine = LlamaEngine(model_path, state_dir=states)
    _evaluated(engine, ChatSession(engine, template, GREEDY, history).plan("x").tokens[:-8])
    engine.save_state()
    engine.close()


def fresh_reply(model_path, template, history, question: str, state_dir=None):
    """One turn on a freshly opened engine, as after a restart; without ``state_dir`` it keeps
    no states at all and is the cold reference."""
    engine = LlamaEngine(model_path, state_dir=state_dir)
    try:
        return ChatSession(engine, template, GREEDY, history).ask(question)
    finally:
        engine.close()


def _evaluated(engine: LlamaEngine, tokens: list[int]) -> None:
    """Evaluate ``tokens`` from scratch, as the batches a chat would use (512 at a time)."""
    engine.clear_cache()
    engine.decoding.decode(tokens, threading.Event())


def test_a_restored_state_answers_exactly_as_the_live_cache(model_path, states, template):
    """Within the sliding window the restored cells are bit-identical: the same greedy ids.
    Batches matched: both evaluate the history in one call, then the new turn in another."""
    history = long_history(3)
    live = LlamaEngine(model_path, state_dir=states)
    prefix = ChatSession(live, template, GREEDY, history).plan("x").tokens[:-8]
    assert len(prefix) < 512
    _evaluated(live, prefix)
    live.save_state()
    expected = ChatSession(live, template, GREEDY, history).ask("What is the capital of Italy?")
    live.close()
    reopened = LlamaEngine(model_path, state_dir=states)  # as after a restart
    reply = ChatSession(reopened, template, GREEDY, history).ask("What is the capital of Italy?")
    assert reply.completion.usage.cached_tokens == len(prefix)
    assert reply.completion.tokens == expected.completion.tokens
    reopened.close()


def test_a_gemma_state_beyond_the_window_restores_and_resumes(model_path, states, template):
    """Past 512 tokens Gemma's sliding-window layers keep only the last window: llama.cpp's
    seq_pos_min says so. The reply still agrees with the live cache's."""
    history = long_history(10)
    live = LlamaEngine(model_path, state_dir=states)
    prefix = ChatSession(live, template, GREEDY, history).plan("x").tokens[:-8]
    _evaluated(live, prefix)
    live.save_state()
    expected = ChatSession(live, template, GREEDY, history).ask("What is the capital of France?")
    live.close()
    reopened = LlamaEngine(model_path, state_dir=states)
    reply = ChatSession(reopened, template, GREEDY, history).ask("What is the capital of France?")
    import llama_cpp as lc

    assert lc.llama_memory_seq_pos_min(reopened.decoding.memory, 0) > 0  # only the window came back
    assert reply.completion.usage.cached_tokens == len(prefix) > 600
    assert reply.completion.tokens == expected.completion.tokens and "Paris" in reply.text
    reopened.close()


def test_an_early_edit_after_a_restore_equals_a_cold_run(model_path, states, template):
    """The trap: after restoring a long Gemma state, cutting back to an early turn is allowed by
    llama.cpp but gives wrong logits. Basechat evaluates from scratch instead."""
    history = long_history(10)
    save_history_state(model_path, states, template, history)
    restored = LlamaEngine(model_path, state_dir=states)
    ChatSession(restored, template, GREEDY, history).ask("What is the capital of France?")  # restores
    edited = [history[0], Message("assistant", "Two is the only even prime number.")]
    after_restore = ChatSession(restored, template, GREEDY, edited).ask("Why is it special?")
    restored.close()
    expected = fresh_reply(model_path, template, edited, "Why is it special?")
    assert after_restore.completion.tokens == expected.completion.tokens
    assert after_restore.completion.usage.cached_tokens < 200  # re-evaluated from the start


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_a_damaged_or_foreign_state_falls_back_to_the_cold_path(model_path, states, template, damage):
    history = long_history(3)
    save_history_state(model_path, states, template, history)
    [blob] = states.glob("*.kv")
    if damage == "truncate":
        blob.write_bytes(blob.read_bytes()[:1000])
    elif damage == "garbage":
        blob.write_bytes(b"\x00" * blob.stat().st_size)
    else:  # a state made with another context size must not be loaded
        sidecar = blob.with_suffix(".json")
        data = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**data, "n_ctx": 8192}))
    reply = fresh_reply(model_path, template, history, "What is the capital of Italy?", states)
    expected = fresh_reply(model_path, template, history, "What is the capital of Italy?")
    assert reply.completion.tokens == expected.completion.tokens
    assert reply.completion.usage.cached_tokens < 300  # at most the frame's own state
    if damage != "foreign":
        assert not blob.exists()  # removed, with one log line


_SIDECAR_DAMAGE = {
    "token above the vocabulary": lambda data: {**data, "tokens": [*data["tokens"][:-1], 10**9]},
    "token over int32": lambda data: {**data, "tokens": [*data["tokens"][:-1], 2**40]},
    "a token that is text": lambda data: {**data, "tokens": [*data["tokens"][:-1], "7"]},
    "a token that is a boolean": lambda data: {**data, "tokens": [True, *data["tokens"][1:]]},
    "a float size": lambda data: {**data, "size": 1.5},
    "no tokens": lambda data: {**data, "tokens": []},
}


@pytest.mark.parametrize("damage", [*_SIDECAR_DAMAGE, "deeply nested", "deep models.json"])
def test_a_hostile_sidecar_is_removed_and_the_cold_path_runs(model_path, states, template, damage):
    """A state whose sidecar lies (ids the vocabulary does not have, wrong types, nesting deep
    enough to break a recursive parser) never reaches llama.cpp and never stops a chat."""
    history = long_history(3)
    save_history_state(model_path, states, template, history)
    [blob] = states.glob("*.kv")
    sidecar = blob.with_suffix(".json")
    if damage == "deeply nested":
        sidecar.write_text("[" * 200_000 + "]" * 200_000)
    elif damage == "deep models.json":
        (states / "models.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    else:
        blob, sidecar = _named_for_its_tokens(blob, _SIDECAR_DAMAGE[damage](json.loads(sidecar.read_text())))
    reply = fresh_reply(model_path, template, history, "What is the capital of Italy?", states)
    if damage == "deep models.json":  # the memo is rebuilt; the (sound) state may serve the reply
        assert reply.text and json.loads((states / "models.json").read_text())
        return
    expected = fresh_reply(model_path, template, history, "What is the capital of Italy?")
    assert reply.completion.tokens == expected.completion.tokens
    assert not blob.exists() and not sidecar.exists()


def _named_for_its_tokens(blob, data: dict):
    """The damaged sidecar written under the name its tokens hash to (where they can be hashed),
    as a crafted file would be, so only the field checks can catch it."""
    from app.engine.kvstate import token_digest

    blob.with_suffix(".json").unlink()
    try:
        name = token_digest(data["tokens"])
    except Exception:
        name = blob.stem
    blob = blob.rename(blob.with_name(f"{name}.kv"))
    sidecar = blob.with_suffix(".json")
    sidecar.write_text(json.dumps(data))
    return blob, sidecar


def test_the_disk_cap_removes_the_least_recently_used(tmp_path):
    store = KVStateStore(tmp_path, {"model_sha256": "x"}, disk_cap=3_000_000)
    for i in range(5):
        store.save([i] * 40, bytes([i]) * 1_000_000)
        store.flush()
    kept = sorted(p.stem for p in tmp_path.glob("*.kv"))
    assert len(kept) == 3
    again = KVStateStore(tmp_path, {"model_sha256": "x"})
    assert again.best_prefix([4] * 40 + [9], 0).blob == bytes([4]) * 1_000_000
    assert again.best_prefix([0] * 40 + [9], 0) is None  # the oldest went first
    other = KVStateStore(tmp_path, {"model_sha256": "another model"})
    assert other.best_prefix([4] * 40 + [9], 0) is None


def test_a_new_chat_starts_from_the_saved_frame(model_path, states, template):
    engine = LlamaEngine(model_path, state_dir=states)
    ChatSession(engine, template, GREEDY).ask("Hello!")
    engine.close()
    fresh = LlamaEngine(model_path, state_dir=states)
    header = ChatSession(fresh, template, GREEDY)._prompt_tokens(render_pieces(template, [], "")[:1])
    reply = ChatSession(fresh, template, GREEDY).ask("What is 2+2?")
    fresh.close()
    assert reply.completion.usage.cached_tokens >= len(header) > 100


def test_switching_between_two_chats_is_warm_both_ways(model_path, states, template):
    engine = LlamaEngine(model_path, state_dir=states)
    first = ChatSession(engine, template, GREEDY, long_history(6))
    second = ChatSession(engine, template, GREEDY, long_history(7)[2:])
    for question in ("What is 2+2?", "And 3+3?"):
        for session in (first, second):
            reply = session.ask(question)
            if question == "And 3+3?":
                usage = reply.completion.usage
                assert usage.cached_tokens >= 0.9 * usage.prompt_tokens
    engine.close()


def test_resume_from_the_terminal_serves_the_prompt_from_cache(data_dir):
    lines = "Hi, I'm Tom.\nWhat is the capital of France?\nAnd of Italy?\nName a river.\nThanks.\nBye.\n"
    chatted = basechat("--data-dir", str(data_dir), "chat", "--temperature", "0", stdin=lines)
    assert chatted.returncode == 0, chatted.stderr
    cid = json.loads(basechat("--data-dir", str(data_dir), "chats", "list", "--json").stdout)[0]["id"]
    ask = ["ask", "--resume", str(cid), "--json", "--temperature", "0", "What is my name?"]
    resumed = basechat("--data-dir", str(data_dir), *ask)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["cached_tokens"] >= 0.8 * data["prompt_tokens"]
    shown = json.loads(basechat("--data-dir", str(data_dir), "chats", "show", str(cid), "--json").stdout)
    assert len(shown["messages"]) == 14 and shown["messages"][-2]["text"] == "What is my name?"
