"""The ``basechat`` command, run as a real process on the real default model."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_line_error, basechat

pytestmark = pytest.mark.model


def test_ask_answers_with_paris(model_path):
    result = basechat("ask", "--temperature", "0", "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert result.stderr == ""


def test_ask_json_has_every_field(model_path):
    result = basechat("ask", "--json", "--temperature", "0", "What is the capital of France?")
    data = json.loads(result.stdout)
    assert set(data) == {
        "reply", "finish_reason", "prompt_tokens", "cached_tokens", "completion_tokens",
        "ttft_s", "tokens_per_s", "drafted_tokens", "accepted_tokens", "model", "template",
        "dropped_turns", "engine", "sampling",
    }  # fmt: skip
    assert data["sampling"]["temperature"] == 0.0 and data["sampling"]["max_tokens"] == 256
    assert "Paris" in data["reply"] and data["finish_reason"] == "stop" and data["engine"] == "local"
    assert data["model"] == "gemma3-270m" and data["template"] == "chat"
    assert data["prompt_tokens"] > 100 and data["completion_tokens"] > 0


def test_ask_raw_shows_the_bare_continuation(model_path):
    result = basechat("ask", "--raw", "--json", "--temperature", "0", "--max-tokens", "20",
                      "What is the capital of France?")  # fmt: skip
    data = json.loads(result.stdout)
    assert data["template"] == "raw" and data["prompt_tokens"] < 20
    assert data["completion_tokens"] == 20 and data["finish_reason"] == "length"


def test_ask_with_history_file(tmp_path, model_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([
        {"role": "user", "text": "My name is Zoltan."},
        {"role": "assistant", "text": "Nice to meet you, Zoltan!"},
    ]))  # fmt: skip
    result = basechat("prompt", "--history", str(history), "What is my name?")
    assert result.returncode == 0, result.stderr
    assert "User: My name is Zoltan.\nAssistant: Nice to meet you, Zoltan!\n" in result.stdout
    ending = 'User: What is my name?\n(The Assistant remembers: "Your name is Zoltan.")\nAssistant:'
    assert result.stdout.rstrip("\n").endswith(ending)  # the recall note quotes what was said


def test_prompt_json_counts_tokens(model_path):
    data = json.loads(basechat("prompt", "--json", "Hi").stdout)
    assert data["prompt"].endswith("User: Hi\nAssistant:")
    assert 100 < data["tokens"] < 1000 and data["n_ctx"] == 4096


def test_chat_reads_piped_messages_and_resets(model_path):
    script = "My name is Ann.\nWhat is the capital of France?\n/reset\nHello\n/quit\nignored\n"
    result = basechat("chat", "--temperature", "0", stdin=script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "(new conversation)" in lines
    assert any("Paris" in line for line in lines)
    assert len(lines) == 4  # three replies and the reset notice; /quit stopped reading


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["ask", "--model", "/no/such/model.gguf", "hi"], "not found"),
        (["ask", "--model", "no-such-id", "hi"], "Unknown model"),
        (["ask", "--template", "nope", "hi"], "No template"),
        (["ask", "--max-tokens", "0", "hi"], "--max-tokens"),
        (["ask", "--temperature", "-1", "hi"], "negative"),
        (["ask", "--history", "/no/such.json", "hi"], "Cannot read"),
        (["ask", "--max-tokens", "lots", "hi"], "invalid int"),
        (["ask", "   "], "empty"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(args, fragment, model_path):
    assert_one_line_error(basechat(*args), fragment)


def test_bad_files_give_one_line(tmp_path, model_path):
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(b"\x00" * 4096)
    assert_one_line_error(basechat("ask", "--model", str(noise), "hi"), "not a GGUF")
    broken = tmp_path / "history.json"
    broken.write_text('[{"role": "user", "text": ')
    assert_one_line_error(basechat("ask", "--history", str(broken), "hi"), "not valid JSON")
    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"role": "narrator", "text": "x"}]')
    assert_one_line_error(basechat("ask", "--history", str(wrong), "hi"), "turn 1")
