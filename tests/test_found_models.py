"""Model files other tools downloaded, found where they are (synthetic folder layouts around
real GGUF files), and a second real model: another architecture and tokenizer, instruction-tuned."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.engine.gguf_header import read_gguf_header
from app.models.found import find_local_models
from tests.helpers import basechat

pytestmark = pytest.mark.model


def link(target, path):
    """A file of its own for each tool, as downloads are (a hard link: no disk, another path)."""
    import os
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(target, path)
    except OSError:  # another file system
        shutil.copyfile(target, path)
    return path


@pytest.fixture
def home(tmp_path, model_path, smollm2_path):
    """LM Studio and GPT4All folders, an Ollama blob store, and a Hugging Face cache."""
    home = tmp_path / "home"
    link(smollm2_path, home / ".lmstudio/models/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2.gguf")
    link(model_path, home / ".local/share/nomic.ai/GPT4All/gemma-3-270m.gguf")
    digest = "sha256:" + hashlib.sha256(b"stand-in digest").hexdigest()
    link(model_path, home / ".ollama/models/blobs" / digest.replace(":", "-"))
    manifest = home / ".ollama/models/manifests/registry.ollama.ai/library/gemma3/270m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:00"},
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest},
    ]}))  # fmt: skip
    snapshot = tmp_path / "hf/models--someone--tiny-GGUF/snapshots/abc123"
    link(smollm2_path, snapshot / "tiny.Q4_1.gguf")
    (tmp_path / "hf/models--someone--tiny-GGUF/refs").mkdir(parents=True)
    (tmp_path / "hf/models--someone--tiny-GGUF/refs/main").write_text("abc123")
    (home / ".lmstudio/models/broken.gguf").write_bytes(b"GGUF not really")  # skipped, not fatal
    return home


def test_finds_each_tools_files_and_flags_instruct(home, tmp_path):
    found = find_local_models(home, tmp_path / "hf")
    assert {(m.app, m.name, m.instruct) for m in found} == {
        ("GPT4All", "Gemma 3 270m", False),
        ("Ollama", "gemma3:270m", False),
        ("LM Studio", "Smollm2 135M 8k Lc100K Mix1 Ep2", True),  # general.name in its header
        ("Hugging Face cache", "someone/tiny-GGUF/tiny.Q4_1.gguf", True),
    }
    assert [m.instruct for m in found] == [False, False, True, True]  # base models first
    again = find_local_models(home, tmp_path / "hf")
    assert len(again) == 4  # a file reached twice (a link) would be listed once


def test_ollama_blob_is_found_by_its_manifest(tmp_path, model_path):
    home = tmp_path / "home"
    digest = "sha256:" + "ab" * 32
    link(model_path, home / ".ollama/models/blobs" / digest.replace(":", "-"))
    manifest = home / ".ollama/models/manifests/registry.ollama.ai/library/gemma3/270m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest}]})
    )
    [found] = find_local_models(home, tmp_path / "no-hf-cache")
    assert (found.app, found.name, found.instruct) == ("Ollama", "gemma3:270m", False)


def test_models_list_shows_found_files_and_add_uses_one_without_copying(home, data_dir, smollm2_path):
    env = {"HOME": str(home), "HF_HUB_CACHE": str(home.parent / "hf"), "HF_HUB_OFFLINE": "1"}
    listed = basechat("--data-dir", str(data_dir), "models", "list", "--json", extra_env=env)
    assert listed.returncode == 0, listed.stderr
    found = [row for row in json.loads(listed.stdout) if row["id"].startswith("found:")]
    assert {row["found_by"] for row in found} >= {"LM Studio", "Ollama"}
    added = basechat("--data-dir", str(data_dir), "models", "add", str(smollm2_path), extra_env=env)
    assert added.returncode == 0, added.stderr
    assert "instruction-tuned" in added.stderr  # the note for instruct models
    assert not list((data_dir / "models").glob("*Smol*"))  # used where it is, not copied


def test_a_second_architecture_and_tokenizer_chat_through_the_transcript(smollm2_path, template):
    from app.chat import ChatSession
    from app.engine.base import SamplingParams
    from app.engine.llama import LlamaEngine

    info = read_gguf_header(smollm2_path)
    assert info.architecture == "llama" and info.looks_instruct
    with LlamaEngine(smollm2_path) as engine:
        text = "Hello <eos> world 🦩"
        assert engine.detokenize(engine.tokenize(text)) == text
        reply = ChatSession(engine, template, SamplingParams(temperature=0.0, max_tokens=40)).ask(
            "What is the capital of France?"
        )
    assert reply.completion.finish_reason in ("stop", "length") and "User:" not in reply.text
