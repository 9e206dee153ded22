"""Searching the Hub for GGUF files (against the local Hub stand-in), base models first, and
downloading a result with the catalog's own verified download."""

from __future__ import annotations

import json

import pytest

from app.models.search import classify, search_hub
from tests.ggufs import write_gguf
from tests.helpers import basechat
from tests.hub_server import start_hub


@pytest.fixture
def hub(monkeypatch, tmp_path):
    server = start_hub()
    files = {
        ("someone/Tiny-Base-GGUF", "tiny-base.Q8_0.gguf"): write_gguf(tmp_path / "a.gguf", seed=1),
        ("someone/Tiny-Instruct-GGUF", "tiny-instruct.Q8_0.gguf"): write_gguf(tmp_path / "b.gguf", seed=2),
        ("other/tiny-mystery-GGUF", "tiny-mystery.gguf"): write_gguf(tmp_path / "c.gguf", seed=3),
        ("other/tiny-templated-GGUF", "tiny-templated.gguf"): write_gguf(
            tmp_path / "d.gguf", seed=4, strings={"tokenizer.chat_template": "{{ messages }}"}
        ),
    }
    server.hub.files = {key: path.read_bytes() for key, path in files.items()}
    server.hub.tags = {"someone/Tiny-Base-GGUF": ["base"]}
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.shutdown()


def test_classify_by_tags_and_names():
    assert classify("org/Qwen3-8B-Base-GGUF", "Qwen3-8B-Base.Q4_K_M.gguf", ["base"]) == "base"
    assert classify("org/gemma-3-4b-it-GGUF", "gemma-3-4b-it.Q4_K_M.gguf", []) == "instruct"
    assert classify("org/Mistral-7B-Instruct-GGUF", "m.gguf", ["base"]) == "instruct"
    assert classify("org/some-model-GGUF", "some-model.gguf", []) == "unknown"
    assert classify("org/Wit-GGUF", "wit.gguf", []) == "unknown"  # "it" inside a word is not "-it"


def test_search_lists_gguf_files_base_first_with_sizes(hub):
    results = search_hub("tiny")
    assert [(r.repo, r.kind) for r in results] == [
        ("other/tiny-mystery-GGUF", "base"),  # nothing in its name: its header has no chat template
        ("someone/Tiny-Base-GGUF", "base"),  # tagged "base"
        ("other/tiny-templated-GGUF", "instruct"),  # nothing in its name, but a chat template inside
        ("someone/Tiny-Instruct-GGUF", "instruct"),
    ]
    ranged = [r for r in hub.hub.requests if r[2]]
    assert {r[1].split("/resolve/")[0] for r in ranged} == {
        "/other/tiny-mystery-GGUF",
        "/other/tiny-templated-GGUF",
    }
    assert all(r.size > 0 and r.sha256 for r in results)
    assert search_hub("nothing-like-this") == []


@pytest.mark.model
def test_cli_search_and_get_download_verified(hub, data_dir):
    env = {"HF_ENDPOINT": hub.url}
    found = basechat("--data-dir", str(data_dir), "models", "search", "tiny", "--json", extra_env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["kind"] == "base"
    got = basechat("--data-dir", str(data_dir), "models", "get", "someone/Tiny-Base-GGUF",
                   "tiny-base.Q8_0.gguf", extra_env=env)  # fmt: skip
    assert got.returncode == 0, got.stderr
    target = data_dir / "models" / "tiny-base.Q8_0.gguf"
    assert target.read_bytes() == hub.hub.files[("someone/Tiny-Base-GGUF", "tiny-base.Q8_0.gguf")]
    listed = json.loads(
        basechat("--data-dir", str(data_dir), "models", "list", "--json", extra_env=env).stdout
    )
    assert any(row["id"] == "hub-tiny-base.q8-0" and row["installed"] for row in listed)
    missing = basechat("--data-dir", str(data_dir), "models", "get", "someone/Tiny-Base-GGUF", "nope.gguf",
                       extra_env=env)  # fmt: skip
    assert missing.returncode == 1 and "No file 'nope.gguf'" in missing.stderr


@pytest.mark.model
def test_the_models_dialog_lists_found_files_and_hub_results(
    qtbot, window, hub, tmp_path, monkeypatch, model_path
):
    import os

    from app.ui.models_dialog import ModelsDialog

    home = tmp_path / "home"
    gpt4all = home / ".local/share/nomic.ai/GPT4All"
    gpt4all.mkdir(parents=True)
    os.link(model_path, gpt4all / "gemma.gguf")
    monkeypatch.setenv("HOME", str(home))
    dialog = ModelsDialog(window)
    qtbot.addWidget(dialog)

    def rows() -> list[list[str]]:
        table = dialog.more
        return [[table.item(r, c).text() for c in range(4)] for r in range(table.rowCount())]

    qtbot.waitUntil(lambda: any(row[0] == "GPT4All" for row in rows()), timeout=30_000)
    assert ["GPT4All", "Gemma 3 270m", "0.25 GB", "base"] in rows()
    dialog.search.setText("tiny")
    dialog.search_hub()
    qtbot.waitUntil(lambda: sum(row[0].startswith("Hub:") for row in rows()) == 4, timeout=30_000)
    assert [row[3] for row in rows() if row[0].startswith("Hub:")] == ["base", "base", "instruct", "instruct"]
