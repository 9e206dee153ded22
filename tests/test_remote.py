"""The remote engine against real servers on 127.0.0.1: llama.cpp's llama-server (alone and with
its layers in an rpc-server process), llama-cpp-python's server, and a scripted one for faults."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import httpx2
import psutil
import pytest

from app.chat import ChatSession
from app.engine.base import SamplingParams
from app.engine.factory import open_backend
from app.engine.remote import RemoteEngine, ServerConfig
from app.errors import ContextOverflow, RemoteError
from tests.conftest import ROOT
from tests.helpers import assert_favour_lifts_the_second_choice, assert_one_line_error, basechat
from tests.servers import (
    BIN,
    FaultServer,
    free_port,
    start_llama_server,
    start_python_server,
    start_rpc_server,
)

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not (BIN / "llama-server").exists(), reason="run 'make servers' first"),
]
QUESTION = "What is the capital of France?"
# The penalties look back over the prompt, as llama-server's always do, so both engines sample alike.
GREEDY = SamplingParams(temperature=0.0, max_tokens=64, penalize_prompt=True)


@pytest.fixture(scope="module")
def llama_server(model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ls")
    server = start_llama_server(model_path, folder / "server.log", "--slot-save-path", str(folder))
    yield server
    server.stop()


@pytest.fixture
def remote(llama_server):
    with RemoteEngine(ServerConfig(llama_server.url)) as engine:
        yield engine


@pytest.fixture
def fault():
    server = FaultServer()
    yield server
    server.close()


def _session(engine, template, params=GREEDY) -> ChatSession:
    return ChatSession(engine, template, params)


# -- llama-server, native API -------------------------------------------------------


def test_cli_ask_against_llama_server_answers_paris(llama_server):
    result = basechat("ask", "--server", llama_server.url, "--json", "--temperature", "0", QUESTION)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "Paris" in data["reply"] and data["finish_reason"] == "stop"
    assert data["engine"] == "remote" and data["model"] == "gemma-3-270m-q4_k_m.gguf"


def test_detects_llama_server_and_reads_its_context(remote):
    info = remote.describe()
    assert remote.kind == "llama" and info.kind == "remote"
    assert info.n_ctx == 4096 and info.device == "llama-server" and not info.note


def test_tokens_match_the_local_engine_and_typed_specials_stay_text(remote, engine):
    text = "Hello <eos> world, naïve café 🦩"
    assert remote.tokenize(text) == engine.tokenize(text)
    assert remote.start_tokens() == engine.start_tokens()
    assert remote.detokenize(remote.tokenize(text)) == text


def test_greedy_remote_reply_equals_the_greedy_local_reply(remote, engine, template, llama_server):
    """Both cold: a prompt evaluated in other batch splits can flip a near-tie (as a warm local
    cache can), so the server's slot is erased and the local cache cleared first."""
    for question in (QUESTION, "Who were the Romans?", "Name three colours."):
        engine.clear_cache()
        httpx2.post(f"{llama_server.url}/slots/0?action=erase", timeout=10).raise_for_status()
        local = _session(engine, template).ask(question)
        far = _session(remote, template).ask(question)
        assert far.completion.tokens == local.completion.tokens, question
        assert far.text == local.text


def test_reply_stops_at_the_speaker_label_and_its_tokens_spell_it(remote, template):
    session = _session(remote, template, replace(GREEDY, max_tokens=200))
    chunks = list(stream := session.send("Tell me about Rome."))
    reply = stream.reply
    assert reply.completion.finish_reason == "stop"
    assert "User:" not in "".join(chunks) and "Assistant:" not in reply.message.raw
    assert remote.detokenize(list(reply.completion.tokens)) == reply.message.raw


def test_follow_up_turn_is_served_from_the_server_cache(remote, template):
    session = _session(remote, template)
    first = session.ask(QUESTION)
    second = session.ask("And of Italy?")
    assert first.completion.usage.prompt_tokens <= second.completion.usage.cached_tokens
    assert second.completion.usage.cached_tokens < second.completion.usage.prompt_tokens
    assert second.completion.usage.prompt_tokens > first.completion.usage.prompt_tokens


def test_cancel_mid_reply_ends_it_and_frees_the_slot(remote, template):
    params = SamplingParams(temperature=1.0, seed=5, max_tokens=2000, ignore_eos=True)
    stream = _session(remote, template, params).send("Write a very long story about a dragon.")
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == 5:
            stream.cancel()
    completion = stream.reply.completion
    assert completion.finish_reason == "cancelled"
    assert 5 <= completion.usage.completion_tokens < 100
    started = time.monotonic()
    again = _session(remote, template).ask(QUESTION)  # the slot is free for the next request
    assert "Paris" in again.text and time.monotonic() - started < 10


def test_the_server_context_overflow_is_a_clear_error(remote):
    too_long = remote.start_tokens() + remote.tokenize("word " * 5000)
    with pytest.raises(ContextOverflow, match="context"):
        remote.generate(too_long, GREEDY, []).run()


def test_server_killed_mid_reply_keeps_the_partial_reply(model_path, tmp_path, template, data_dir):
    from app.store import ChatStore, ReplyRecorder

    server = start_llama_server(model_path, tmp_path / "dying.log")
    try:
        engine = RemoteEngine(ServerConfig(server.url))
        params = SamplingParams(temperature=1.0, seed=5, max_tokens=2000, ignore_eos=True)
        stream = _session(engine, template, params).send("Write a very long story about a dragon.")
        store = ChatStore(data_dir / "chats.db")
        conversation = store.create_conversation(template="chat", settings={}, model="remote")
        store.add_user_message(conversation, "Write a very long story about a dragon.")
        recorder = ReplyRecorder(store, store.begin_reply(conversation, "remote"))
        shown = []
        for chunk in stream:
            shown.append(chunk)
            recorder.add(chunk)
            if len(shown) == 10:
                server.kill()
        recorder.finish(stream.reply)
    finally:
        server.kill()
    completion = stream.reply.completion
    assert completion.finish_reason == "interrupted" and "closed the connection" in completion.error
    assert completion.text == "".join(shown) and len(shown) >= 10
    saved = store.get(conversation).messages[-1]
    assert saved.status == "interrupted" and saved.text == "".join(shown).strip()


def test_cli_names_the_missing_api_key(model_path, tmp_path):
    server = start_llama_server(model_path, tmp_path / "keyed.log", "--api-key", "s3cret")
    try:
        refused = basechat("ask", "--server", server.url, QUESTION)
        assert_one_line_error(refused, "API key")
        answered = basechat("ask", "--server", server.url, "--api-key-env", "MY_KEY", "--temperature", "0",
                            QUESTION, extra_env={"MY_KEY": "s3cret"})  # fmt: skip
        assert answered.returncode == 0 and "Paris" in answered.stdout, answered.stderr
        assert "s3cret" not in (tmp_path / "keyed.log").read_text(errors="replace").split("api-key")[0]
    finally:
        server.stop()


def test_model_split_over_an_rpc_server_chats_the_same(model_path, tmp_path, template):
    rpc = start_rpc_server(tmp_path / "rpc.log")
    server = None
    try:
        server = start_llama_server(model_path, tmp_path / "main.log", "--rpc", rpc.url, "-ngl", "99")
        weights = psutil.Process(rpc.process.pid).memory_info().rss
        assert weights > 0.8 * model_path.stat().st_size  # the layers live in the RPC process
        with RemoteEngine(ServerConfig(server.url)) as engine:
            session = _session(engine, template)
            assert "Paris" in session.ask(QUESTION).text
            follow = session.ask("And of Italy?")
            assert follow.completion.finish_reason == "stop" and follow.completion.usage.cached_tokens > 0
    finally:
        if server:
            server.stop()
        rpc.kill()


# -- llama-cpp-python's server: the generic /v1/completions path -------------------------


@pytest.fixture(scope="module")
def python_server(model_path, tmp_path_factory):
    server = start_python_server(model_path, tmp_path_factory.mktemp("py") / "server.log")
    yield server
    server.stop()


def test_cli_ask_against_llama_cpp_python_server(python_server):
    result = basechat("ask", "--server", python_server.url, "--json", "--temperature", "0", QUESTION)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "Paris" in data["reply"] and data["finish_reason"] == "stop" and data["engine"] == "remote"


def test_openai_path_streams_stops_and_counts(python_server, template):
    with RemoteEngine(ServerConfig(python_server.url)) as engine:
        assert engine.kind == "openai" and engine.describe().n_ctx == 2048  # /v1/models names no context
        session = _session(engine, template, replace(GREEDY, max_tokens=200))
        chunks = list(stream := session.send("Tell me about Rome."))
        assert len(chunks) > 3 and "User:" not in "".join(chunks)
        assert stream.reply.completion.finish_reason == "stop"
        assert stream.reply.completion.usage.completion_tokens > 3
        limited = _session(engine, template, replace(GREEDY, max_tokens=3)).ask("Tell me a long story.")
        assert limited.completion.finish_reason == "length"


# -- faults ---------------------------------------------------------------------------


def test_dead_port_is_one_line_within_seconds():
    started = time.monotonic()
    result = basechat("ask", "--server", f"http://127.0.0.1:{free_port()}", QUESTION)
    assert time.monotonic() - started < 10
    assert_one_line_error(result, "Cannot reach the server")


def test_a_stalled_stream_times_out_and_stop_works_at_once(fault, template):
    fault.mode = "stall"
    engine = RemoteEngine(ServerConfig(fault.url, read_timeout=1.0))
    stalled = engine.generate(engine.tokenize("Hi there"), GREEDY, []).run()
    assert stalled.finish_reason == "interrupted" and stalled.text == " Par"  # what came is kept
    assert "sent nothing" in stalled.error
    patient = RemoteEngine(ServerConfig(fault.url, read_timeout=60))
    generation = patient.generate(patient.tokenize("Hi there"), GREEDY, [])
    timer = threading.Timer(0.5, generation.cancel)
    started = time.monotonic()
    timer.start()
    completion = generation.run()
    assert completion.finish_reason == "cancelled" and completion.text == " Par"
    assert time.monotonic() - started < 2


def test_estimated_tokens_when_the_server_has_no_tokenizer(fault):
    engine = RemoteEngine(ServerConfig(fault.url))
    text = "Hello, world! ünïcode 🦩"
    tokens = engine.tokenize(text)
    assert engine.detokenize(tokens) == text and len(tokens) >= len(text) // 2
    assert "estimated" in engine.describe().note and engine.describe().n_ctx == 2048


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("malformed", "malformed event"),
        ("error500", "HTTP 500: CUDA out of memory"),
        ("unknown_model", "does not know that model"),
        ("unauthorised", "refused the API key"),
    ],
)
def test_server_faults_are_one_clear_error(fault, mode, message):
    fault.mode = "ok"
    engine = RemoteEngine(ServerConfig(fault.url))
    assert engine.generate(engine.tokenize("Hi"), GREEDY, []).run().text == " Paris."
    fault.mode = mode
    with pytest.raises(RemoteError, match=message):
        if mode == "unauthorised":
            RemoteEngine(ServerConfig(fault.url))
        engine.generate(engine.tokenize("Hi"), GREEDY, []).run()


def test_only_the_configured_url_is_contacted(fault, monkeypatch):
    proxy = FaultServer()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        engine = open_backend(server=ServerConfig(fault.url))
        engine.generate(engine.tokenize("Hi"), GREEDY, []).run()
        assert proxy.seen == [] and "/v1/completions" in fault.seen
    finally:
        proxy.close()


def test_server_config_never_shows_its_key():
    config = ServerConfig("http://127.0.0.1:1", api_key="s3cret")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config)


def test_bench_and_eval_run_against_the_server(llama_server, tmp_path):
    bench = basechat("bench", "--server", llama_server.url, "--quick", "--json", timeout=300)
    assert bench.returncode == 0, bench.stderr
    figures = json.loads(bench.stdout)
    assert figures["engine"] == "remote" and figures["server_gen_tps"] > 0
    assert 0 < figures["remote_ttft_warm_s"] < figures["remote_ttft_cold_s"]
    assert 0 <= figures["remote_overflow_full_reeval_share"] <= 1
    some = tmp_path / "memory.jsonl"  # a slice: the whole set is for `basechat eval`, not a test
    some.write_text(
        "".join((ROOT / "tests/data/memory.jsonl").read_text(encoding="utf-8").splitlines(True)[:12])
    )
    evaluated = basechat("eval", str(some), "--server", llama_server.url, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["turn_stop_rate"] >= 0.9


def test_alternatives_and_token_probabilities_from_llama_server(remote, template):
    """A server's alternatives are requests one after another (seed + i); its token
    probabilities come from llama-server's n_probs and spell the reply like the local ones."""
    sampled = SamplingParams(temperature=0.9, seed=5, max_tokens=40, n_probs=3)
    replies = _session(remote, template, sampled).send_many("Name an animal.", 3).run()
    assert len(replies) == 3 and len({r.text for r in replies}) >= 2
    for reply in replies:
        probs = reply.completion.probs
        assert [p.chosen.token for p in probs] == list(reply.completion.tokens)
        assert "".join(p.chosen.text for p in probs) == reply.completion.text
        for p in probs:
            values = [c.prob for c in p.top]
            assert 1 <= len(values) <= 3 and values == sorted(values, reverse=True)
            assert all(0.0 <= v <= 1.0 for v in values)


def test_estimated_tokens_spell_their_own_text_in_any_thread_and_any_process():
    """Servers without a tokenizer get pseudo-tokens; their ids used to index a table that grew for
    the life of the process, unlocked, and meant nothing in the next process."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from app.engine.remote import _estimate_tokens, _estimated_text

    texts = ["Hello, world!", "naïve café 🎉", "中文字符和日本語", "\x00\uffff\U0010ffff", "a", ""]
    texts.append("ab" * 500)
    ids = [_estimate_tokens(text) for text in texts]
    assert [_estimated_text(i) for i in ids] == texts
    assert all(0 <= token < 2**31 for tokens in ids for token in tokens)  # they fit the store's int32
    assert len(_estimate_tokens("ab" * 500)) == 500  # two characters a token: counts stay conservative
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(_estimate_tokens, texts * 50)) == ids * 50
    code = f"from app.engine.remote import _estimated_text as t; print(repr([t(i) for i in {ids!r}]))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == repr(texts)
    assert _estimated_text([-5, 2**31 - 1 & ~(2**30)]) == "\ufffd\ufffd"


def test_a_server_that_does_not_draft_says_how_to_start_one_that_does(remote):
    note = remote.use_draft("lookup")
    assert "\n" not in note and "--spec-type ngram-simple" in note and "--model-draft" in note
    assert remote.use_draft("off") == ""


def test_a_drafting_llama_server_reports_its_acceptance(model_path, tmp_path):
    """llama-server started with prompt lookup (ngram-simple) drafts on its own; Basechat says it
    cannot change that, and shows the server's drafted and accepted counts as its own."""
    lookup = (
        "--spec-type",
        "ngram-simple",
        "--spec-ngram-simple-size-n",
        "3",
        "--spec-ngram-simple-size-m",
        "8",
    )
    server = start_llama_server(model_path, tmp_path / "server.log", *lookup)
    try:
        with RemoteEngine(ServerConfig(server.url)) as engine:
            assert "drafts as it was started" in engine.use_draft("lookup")
            text = "Day 1: water the plants.\nDay 2: water the plants.\nDay 3: water the plants.\nDay 4:"
            prompt = engine.start_tokens() + engine.tokenize(text)
            result = engine.generate(prompt, replace(GREEDY, max_tokens=60, repeat_penalty=1.0), []).run()
            assert result.usage.drafted_tokens > 0
            assert 0 < result.usage.accepted_tokens <= result.usage.drafted_tokens
    finally:
        server.stop()


def test_llama_server_samples_with_dry_and_says_where_it_cannot_follow(remote):
    """DRY is sent as llama-server's own dry_* fields: the server's reply stops copying the line,
    as the local engine's does; a penalty over the reply only is beyond it, and it says so."""
    line = "water the plants and feed the cat."
    text = "Schedule\n" + "".join(f"Day {n}: {line}\n" for n in (1, 2, 3)) + "Day 4:"
    prompt = remote.start_tokens() + remote.tokenize(text)
    greedy = replace(GREEDY, max_tokens=80, repeat_penalty=1.0, dry_multiplier=0.0, ignore_eos=True)
    assert remote.generate(prompt, greedy, []).run().text.count(line) >= 3
    assert remote.generate(prompt, replace(greedy, dry_multiplier=0.8), []).run().text.count(line) == 0
    assert remote.sampling_caveat(replace(GREEDY, penalize_prompt=False)).startswith(
        "This server's repetition"
    )
    assert remote.sampling_caveat(GREEDY) == ""
    dry_reply_only = replace(GREEDY, repeat_penalty=1.0, dry_multiplier=0.8, penalize_prompt=False)
    assert "over the prompt" in remote.sampling_caveat(dry_reply_only)


def test_llama_server_holds_a_reply_to_its_minimum_then_lets_it_end(remote, template):
    """A server cannot ban a token only at the start of a line, so the reply is asked for in two
    requests: the first up to the minimum, with end-of-text and the speakers' names banned, the
    second going on from there as usual (served from the slot's cache)."""
    plain = SamplingParams(temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0, max_tokens=60)
    prompt = _session(remote, template, plain).plan("What is the capital of France?").tokens
    natural = remote.generate(prompt, plain, template.stop_strings()).run()
    held = remote.generate(prompt, replace(plain, min_tokens=30), template.stop_strings()).run()
    assert natural.usage.completion_tokens < 20 and natural.finish_reason == "stop"
    assert held.usage.completion_tokens >= 30, held.text
    assert held.text.startswith(natural.text.rstrip()) and "User:" not in held.text
    assert remote.detokenize(list(held.tokens)) == held.text  # the tokens of both requests spell it


def test_llama_server_favours_the_recalled_words(remote, template):
    """The recall note's words reach a server as a positive logit bias: the model's second choice
    for the reply's first token, favoured, is likelier than it was."""
    prompt = _session(remote, template).plan("Name an animal.").tokens
    assert_favour_lifts_the_second_choice(remote, prompt, template.stop_strings())


def test_a_favoured_word_is_lifted_until_written_on_the_server_as_locally(remote, template, monkeypatch):
    """llama-server's bias holds for a whole request, the local engine's until a favoured word is
    written: the lift goes in a first request the client leaves once the word is written, and the
    reply goes on in a second request without it (greedy "Tell me about Lisbon." starts "Lisbon")."""
    from app.engine import http_stream

    sent: list[dict] = []
    opened = http_stream.EventStream.__init__

    def recording(self, client, url, path, body, *rest) -> None:
        sent.append(body)
        opened(self, client, url, path, body, *rest)

    monkeypatch.setattr(http_stream.EventStream, "__init__", recording)
    plain = SamplingParams(temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0, max_tokens=40)
    prompt = _session(remote, template, plain).plan("Tell me about Lisbon.").tokens
    far = remote.generate(prompt, replace(plain, favour=("Lisbon",)), template.stop_strings()).run()
    assert far.text.lstrip().startswith("Lisbon") and far.text.count("Lisbon") == 1, far.text
    assert len(sent) == 2 and sent[0]["logit_bias"] and sent[0]["n_predict"] <= 16
    assert "logit_bias" not in sent[1] and sent[1]["prompt"][: len(prompt)] == prompt
    assert remote.detokenize(list(far.tokens)) == far.text
