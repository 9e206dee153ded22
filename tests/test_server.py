"""``basechat serve``, driven by clients nobody here wrote: the official ``openai`` package,
simonw's ``llm`` command, and the KoboldCpp requests SillyTavern sends (their shapes read from
SillyTavern's ``src/endpoints/backends/kobold.js``). The server is the real command in its own
process on 127.0.0.1, with the real default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx2
import pytest

from tests.conftest import ROOT
from tests.helpers import assert_one_line_error, basechat
from tests.servers import ServerProcess, start_basechat_server

pytestmark = pytest.mark.model

KEY = "s3rver-key"


def post(server: ServerProcess, path: str, body: object) -> httpx2.Response:
    return httpx2.post(f"{server.url}{path}", json=body, headers=server.headers, timeout=120)


@pytest.fixture(scope="module")
def served(model_path, tmp_path_factory):
    data = tmp_path_factory.mktemp("served")
    (data / "models").mkdir()
    (data / "models" / model_path.name).symlink_to(model_path)
    server = start_basechat_server(data, "--temperature", "0")
    yield server
    server.stop()


@pytest.fixture
def client(served):
    from openai import OpenAI

    return OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0, timeout=120)


# -- the openai package ----------------------------------------------------------------------------


def test_models_lists_the_model_and_the_templates_as_chat_models(client):
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "gemma3-270m" and "basechat/chat" in ids


def test_a_raw_completion_continues_the_text(client):
    done = client.completions.create(model="gemma3-270m", prompt="One, two, three, four,", max_tokens=6)
    choice = done.choices[0]
    assert choice.text.strip() and choice.finish_reason in ("length", "stop")
    assert done.usage.completion_tokens >= 1 and done.usage.prompt_tokens >= 6


def test_n_completions_are_decoded_together_with_their_logprobs(client):
    done = client.completions.create(model="gemma3-270m", prompt="My favourite animal is the", max_tokens=8,
                                     n=4, temperature=1.0, logprobs=3, seed=11)  # fmt: skip
    assert sorted(c.index for c in done.choices) == [0, 1, 2, 3]
    assert len({c.text for c in done.choices}) >= 2
    for choice in done.choices:
        lp = choice.logprobs
        assert "".join(lp.tokens) == choice.text and len(lp.token_logprobs) == len(lp.tokens)
        assert all(v <= 0 for v in lp.token_logprobs) and all(1 <= len(top) <= 3 for top in lp.top_logprobs)


def test_echo_scores_the_prompt_as_the_engine_does(client, engine, model_path):
    """lm-evaluation-harness's loglikelihood call: max_tokens 0, echo, logprobs."""
    text = "The capital of France is Paris."
    done = client.completions.create(model="gemma3-270m", prompt=text, max_tokens=0, echo=True, logprobs=1)
    lp = done.choices[0].logprobs
    assert done.choices[0].text == text and lp.token_logprobs[0] is None
    prompt = engine.start_tokens() + engine.tokenize(text)
    own = [s.logprob for s in engine.score(prompt)]
    assert lp.token_logprobs[1:] == pytest.approx(own, abs=1e-3)
    # Worked out apart from the engine (llama-cpp-python's defaults: another KV cache type and batch
    # size move a token's figure by up to a few tenths here; a token scored one place off, by nats).
    reference = _reference(model_path, prompt)
    assert lp.token_logprobs[1:] == pytest.approx(reference, abs=0.6)
    assert sum(lp.token_logprobs[1:]) == pytest.approx(sum(reference), rel=0.05)
    assert all(len(top) == 1 for top in lp.top_logprobs[1:])


def _reference(model_path, prompt: list[int]) -> list[float]:
    """Each token's log-probability from llama-cpp-python's own high-level model."""
    import llama_cpp
    import numpy as np

    model = llama_cpp.Llama(str(model_path), n_ctx=256, logits_all=True, verbose=False)
    try:
        model.eval(prompt)
        rows = np.asarray(model.scores[: len(prompt) - 1], dtype=np.float64)
    finally:
        model.close()
    top = rows.max(axis=1, keepdims=True)
    logsoftmax = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
    return [float(logsoftmax[i, token]) for i, token in enumerate(prompt[1:])]


def test_a_completion_streams(client):
    stream = client.completions.create(
        model="gemma3-270m", prompt="Counting: 1, 2, 3,", max_tokens=8, stream=True
    )
    chunks = list(stream)
    texts = [c.choices[0].text for c in chunks]
    assert len([t for t in texts if t]) >= 2 and chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_a_chat_answers_through_the_scaffold(client):
    done = client.chat.completions.create(
        model="basechat/chat", messages=[{"role": "user", "content": "What is the capital of France?"}]
    )
    reply = done.choices[0].message.content
    assert reply and "User:" not in reply and "Assistant:" not in reply
    assert done.choices[0].finish_reason in ("stop", "length")


def test_a_chat_streams_with_history_and_a_system_message(client):
    messages = [{"role": "system", "content": "A friendly chat about geography."},
                {"role": "user", "content": "Hi! My name is Ines."},
                {"role": "assistant", "content": "Hello Ines!"},
                {"role": "user", "content": "What is the capital of Spain?"}]  # fmt: skip
    chunks = list(client.chat.completions.create(model="gemma3-270m", messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and "User:" not in text and chunks[-1].choices[0].finish_reason == "stop"


def test_bad_requests_get_one_clear_openai_shaped_error(served):
    cases = [
        ("/v1/completions", b"{not json", 400, "not valid JSON"),
        ("/v1/completions", json.dumps({"prompt": "x", "temperature": "hot"}).encode(), 400, "'temperature'"),
        ("/v1/completions", json.dumps({"prompt": "x", "max_tokens": 10**9}).encode(), 400, "'max_tokens'"),
        ("/v1/completions", json.dumps({"prompt": "x", "n": 99}).encode(), 400, "'n'"),
        ("/v1/completions", json.dumps({"prompt": {"a": 1}}).encode(), 400, "'prompt'"),
        (
            "/v1/chat/completions",
            json.dumps(
                {"model": "basechat/../../etc/passwd", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            404,
            "No template",
        ),
        ("/v1/chat/completions", json.dumps({"messages": []}).encode(), 400, "'messages'"),
        ("/v1/completions", b"[" * 200_000, 400, "JSON"),
        ("/v1/completions", b"x" * (5 * 1024**2), 413, "over 4 MB"),
    ]
    for path, raw, status, fragment in cases:
        answer = httpx2.post(f"{served.url}{path}", content=raw, timeout=60,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == status, (path, raw[:60], answer.text[:200])
        error = answer.json()["error"]
        assert fragment in error["message"] and "Traceback" not in answer.text


def test_tokenize_and_detokenize_in_llama_servers_shape(served):
    tokens = post(served, "/tokenize", {"content": "Hello there"}).json()["tokens"]
    assert tokens and all(isinstance(t, int) for t in tokens)
    assert post(served, "/detokenize", {"tokens": tokens}).json()["content"] == "Hello there"


# -- SillyTavern's KoboldCpp requests ------------------------------------------------------------

# What SillyTavern's Kobold backend sends to /api/v1/generate when no Kobold GUI settings are used.
ST_SETTINGS = {
    "prompt": "A chat between Ann and a helpful assistant.\nAnn: What colour is the sky?\nAssistant:",
    "use_story": False, "use_memory": False, "use_authors_note": False, "use_world_info": False,
    "max_context_length": 2048, "max_length": 24, "rep_pen": 1.1, "rep_pen_range": 320, "rep_pen_slope": 0.7,
    "temperature": 0.7, "tfs": 1, "top_a": 0, "top_k": 40, "top_p": 0.9, "min_p": 0.05, "typical": 1,
    "sampler_order": [6, 0, 1, 3, 4, 2, 5], "singleline": False, "use_default_badwordsids": False,
    "mirostat": 0, "mirostat_eta": 0.1, "mirostat_tau": 5, "grammar": "", "sampler_seed": 5,
    "stop_sequence": ["\nAnn:", "\nAssistant:"],
}  # fmt: skip


def test_sillytaverns_kobold_status_and_generate(served):
    get = lambda path: httpx2.get(f"{served.url}/api{path}", timeout=30).json()  # noqa: E731
    assert get("/v1/info/version")["result"] >= "1.2"
    assert get("/extra/version")["result"] == "KoboldCpp"
    assert get("/v1/model")["result"] not in ("ReadOnly", "")
    assert get("/v1/config/max_context_length")["value"] == 4096
    answer = post(served, "/api/v1/generate", ST_SETTINGS | {"temperature": 0}).json()  # greedy: never empty
    text = answer["results"][0]["text"]
    assert text.strip() and "\nAnn:" not in text
    counted = post(served, "/api/extra/tokencount", {"prompt": "Hello there"}).json()
    assert counted["value"] == len(counted["ids"]) >= 1


def test_sillytaverns_kobold_stream_and_abort(served):
    tokens = []
    url = f"{served.url}/api/extra/generate/stream"
    greedy = ST_SETTINGS | {"max_length": 8, "temperature": 0}  # greedy: never an empty reply
    with httpx2.stream("POST", url, json=greedy, timeout=120) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                tokens.append(json.loads(line[6:])["token"])
    assert "".join(tokens).strip()
    assert post(served, "/api/extra/abort", {}).json() == {"success": False}  # nothing runs now


# -- llm, and the key ------------------------------------------------------------------------------


def test_llm_asks_basechat_through_the_chat_endpoint(served, tmp_path):
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: basechat\n  model_name: basechat/chat\n  api_base: {served.url}/v1\n"
    )
    llm = ROOT / ".venv" / "bin" / "llm"
    command = [str(llm)] if llm.exists() else [sys.executable, "-m", "llm"]
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "OPENAI_API_KEY": "unused"}
    asked = [*command, "-m", "basechat", "--no-log", "What is the capital of France?"]
    result = subprocess.run(asked, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and "User:" not in result.stdout


def test_a_key_is_asked_when_set_and_needed_off_this_computer(data_dir):
    server = start_basechat_server(data_dir, key=KEY)
    try:
        refused = httpx2.get(f"{server.url}/v1/models", timeout=30)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]["message"]
        assert post(server, "/tokenize", {"content": "hi"}).status_code == 200
    finally:
        server.stop()
    result = basechat("--data-dir", str(data_dir), "serve", "--host", "0.0.0.0", "--port", "1")
    assert_one_line_error(result, "give an API key with --api-key-env")


def test_a_client_that_leaves_frees_the_model_for_the_next(served):
    """A stream of 4,000 tokens is left after its first token: the next request is answered at
    once (a deadline of 60 s; the abandoned reply alone would take minutes), not after it."""
    body = ST_SETTINGS | {"max_length": 4000, "ignore_eos": True, "stop_sequence": []}
    with httpx2.stream("POST", f"{served.url}/api/extra/generate/stream", json=body, timeout=120) as answer:
        next(line for line in answer.iter_lines() if line.startswith("data: "))
    after = httpx2.post(f"{served.url}/api/v1/generate", json=ST_SETTINGS | {"max_length": 2}, timeout=60)
    assert after.status_code == 200 and "results" in after.json()


# -- chats kept in the history ---------------------------------------------------------------------


def test_keep_chats_stores_a_clients_conversation_turn_by_turn(data_dir):
    """A client's second turn goes on in the conversation its first made (found by what it sends
    back, streamed or not); a new conversation is a new chat; without the flag nothing is kept."""
    from openai import OpenAI

    from app.store import ChatStore
    from app.store.db import DB_NAME

    server = start_basechat_server(data_dir, "--temperature", "0", "--keep-chats")
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)
        said = [{"role": "user", "content": "Hi! I'm Ana and I live in Porto."}]
        first = client.chat.completions.create(model="basechat/chat", messages=said, max_tokens=30)
        said += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "Where do I live?"}]  # fmt: skip
        stream = client.chat.completions.create(
            model="basechat/chat", messages=said, max_tokens=30, stream=True
        )
        second = "".join(c.choices[0].delta.content or "" for c in stream)
        other = [{"role": "user", "content": "What is two plus two?"}]
        client.chat.completions.create(model="basechat/chat", max_tokens=10, messages=other)
    finally:
        server.stop()
    store = ChatStore(data_dir / DB_NAME)
    chats = sorted(store.list_conversations(), key=lambda c: c.id)
    assert len(chats) == 2
    kept = [(m.role, m.text) for m in store.path_slice(chats[0].id, 0)]
    assert kept == [(t["role"], t["content"].strip()) for t in said] + [("assistant", second.strip())]
    assert [m.role for m in store.path_slice(chats[1].id, 0)] == ["user", "assistant"]


def test_without_keep_chats_nothing_is_stored(served):
    from app.store import ChatStore
    from app.store.db import DB_NAME

    post(
        served, "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8}
    )
    database = served.log.parent / DB_NAME
    assert not database.exists() or not ChatStore(database).list_conversations()
