"""A chat past its context: the local engine shifts the dropped turns out of its cache instead of
evaluating the rest again; an engine that cannot shift drops turns in chunks so the prefix stays
cached; a state saved after a shift restores. Real model, real cache."""

from __future__ import annotations

import pytest

from app.chat import ChatSession
from app.engine.base import SamplingParams
from app.engine.llama import LlamaEngine
from app.engine.remote import RemoteEngine, ServerConfig
from app.scaffold import load_template
from app.scaffold.fit import fit_pieces
from app.scaffold.transcript import Piece
from tests.conftest import ROOT
from tests.servers import BIN, start_llama_server

GREEDY = SamplingParams(temperature=0.0, max_tokens=24, repeat_penalty=1.0)


def _pieces(n_turns: int) -> tuple[list[Piece], list[int]]:
    """A header, ``n_turns`` exchanges of 30 + 40 tokens, the new message and the cue."""
    pieces, sizes = [Piece("header", "H")], [100]
    for i in range(n_turns):
        pieces += [Piece("user", f"u{i}", 2 * i), Piece("assistant", f"a{i}", 2 * i + 1)]
        sizes += [30, 40]
    return [*pieces, Piece("user", "new"), Piece("cue", "A:")], [*sizes, 20, 2]


def _first_kept(n_turns: int, chunk: int) -> str:
    pieces, sizes = _pieces(n_turns)
    return fit_pieces(pieces, sizes, 1000, chunk).pieces[1].text


def test_without_a_shift_old_turns_go_in_chunks_so_the_first_kept_turn_holds_for_many_turns():
    one_at_a_time = [_first_kept(n, 0) for n in range(13, 30)]
    chunked = [_first_kept(n, 256) for n in range(13, 30)]
    assert len(set(one_at_a_time)) == 17  # a new first turn, so a new prefix, every turn
    assert len(set(chunked)) <= 5  # a new prefix once every ~4 turns
    for n in range(13, 30):  # and every prompt still fits
        pieces, sizes = _pieces(n)
        assert fit_pieces(pieces, sizes, 1000, 256).total <= 1000


@pytest.fixture(scope="module")
def frame():
    return load_template(ROOT / "tests" / "data" / "compact-frame.toml")


def _chat_past_the_context(engine, frame, turns_after: int):
    """Turns until the chat overflows, then ``turns_after`` more: their usages."""
    session = ChatSession(engine, frame, GREEDY)
    after = []
    for i in range(200):
        reply = session.ask(f"Tell me one short fact about the number {i}.")
        if reply.dropped_turns:
            after.append(reply.completion.usage)
            if len(after) == turns_after:
                return session, after
    raise AssertionError("the chat never outgrew the context")


@pytest.mark.model
def test_turns_after_an_overflow_evaluate_only_their_new_tokens(model_path, frame):
    with LlamaEngine(model_path, n_ctx=1024) as engine:
        assert engine.can_shift_context
        _session, after = _chat_past_the_context(engine, frame, 8)
        full_reevaluations = [u for u in after if u.cached_tokens < u.prompt_tokens / 2]
        assert full_reevaluations == [] and engine.decoding.shifted_tokens > 0
        assert all(u.prompt_tokens - u.cached_tokens < 100 for u in after)


@pytest.mark.model
def test_an_engine_that_cannot_shift_drops_in_chunks_and_still_reuses_most_prompts(
    model_path, frame, monkeypatch
):
    """Where the memory cannot shift (some architectures, a remote server), chunked dropping
    keeps the prefix for most turns: at most one turn in four starts over."""
    monkeypatch.setattr(LlamaEngine, "can_shift_context", property(lambda _self: False))
    with LlamaEngine(model_path, n_ctx=1024) as engine:
        _session, after = _chat_past_the_context(engine, frame, 12)
        cold = [u for u in after if u.cached_tokens < u.prompt_tokens / 2]
        assert len(cold) <= 4 and engine.decoding.shifted_tokens == 0


@pytest.mark.model
@pytest.mark.skipif(not (BIN / "llama-server").exists(), reason="run 'make servers' first")
def test_llama_server_which_cannot_shift_gets_chunked_drops_and_still_reuses_most_prompts(
    model_path, frame, tmp_path
):
    """The real engine that cannot shift: llama.cpp's own server, its prompt cache reused across
    turns only while the prompt's start holds."""
    server = start_llama_server(model_path, tmp_path / "server.log")
    try:
        with RemoteEngine(ServerConfig(server.url, n_ctx=1024)) as engine:
            assert not engine.can_shift_context
            _session, after = _chat_past_the_context(engine, frame, 12)
    finally:
        server.stop()
    cold = [u for u in after if u.cached_tokens < u.prompt_tokens / 2]
    assert len(cold) <= 4


@pytest.mark.model
def test_a_state_saved_after_a_shift_restores_and_answers_as_the_live_cache(model_path, frame, tmp_path):
    with LlamaEngine(model_path, n_ctx=1024, state_dir=tmp_path / "kv") as engine:
        session, _after = _chat_past_the_context(engine, frame, 3)
        engine.save_state()
        history = list(session.history)
        with engine.without_saved_states():  # the reference must not leave a state of its own
            live = ChatSession(engine, frame, GREEDY, history).ask("And the number seven?")
    with LlamaEngine(model_path, n_ctx=1024, state_dir=tmp_path / "kv") as reopened:
        restored = ChatSession(reopened, frame, GREEDY, history).ask("And the number seven?")
    usage = restored.completion.usage
    assert usage.cached_tokens >= 0.8 * usage.prompt_tokens
    assert restored.completion.tokens == live.completion.tokens
