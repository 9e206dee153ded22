"""`basechat models …`: the catalog offline, local files, and downloads from a local Hub."""

from __future__ import annotations

import json
import shutil

import pytest

from app.models.catalog import load_catalog
from tests.helpers import FILE, REPO, assert_one_line_error, basechat
from tests.hub_server import start_hub


def run(data_dir, *args, env=None):
    return basechat("--data-dir", str(data_dir), *args, extra_env=env)


def test_catalog_holds_only_base_models_with_every_field():
    entries = load_catalog()
    assert len(entries) >= 6
    for e in entries:
        assert e.id and e.repo and e.file.endswith(".gguf") and e.size > 0 and e.license
        assert e.context_length > 0 and e.min_ram_gb > 0 and e.template
        assert not any(word in f"{e.name} {e.file}".lower() for word in ("instruct", "chat", "-it"))
    sizes = sorted(e.size for e in entries)
    assert sizes[0] < 300e6 and sizes[-1] > 4e9  # about 135M to 8B parameters
    assert sum(e.embedded for e in entries) == 1


@pytest.mark.model
def test_models_list_works_offline_on_a_fresh_data_folder(tmp_path, model_path):
    rows = json.loads(run(tmp_path, "models", "list", "--json").stdout)
    assert {r["id"] for r in rows} >= {"gemma3-270m", "llama-3-8b"}
    assert not any(r["installed"] for r in rows if r["id"] != "gemma3-270m")


@pytest.mark.model
def test_add_a_local_gguf_then_chat_with_it_and_forget_it(tmp_path, model_path):
    copy = tmp_path / "my-gemma-instruct.gguf"
    shutil.copy(model_path, copy)
    added = run(tmp_path / "data", "models", "add", str(copy))
    assert added.returncode == 0, added.stderr
    assert "gemma3" in added.stdout and "Q4_K_M" in added.stdout
    assert "made for base models" in added.stderr  # 'instruct' in the name
    rows = json.loads(run(tmp_path / "data", "models", "list", "--json").stdout)
    local = next(r for r in rows if r["id"] == "local-my-gemma-instruct.gguf".removesuffix(".gguf"))
    assert local["installed"] and local["path"] == str(copy)
    reply = run(tmp_path / "data", "ask", "--model", local["id"], "--temperature", "0", "What is 2+2?")
    assert reply.returncode == 0 and reply.stdout.strip()
    assert run(tmp_path / "data", "models", "remove", local["id"]).returncode == 0
    assert copy.exists()  # a file from disk is forgotten, never deleted


@pytest.mark.model
def test_bad_local_files_are_refused_in_one_line(tmp_path, model_path):
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(b"\x01" * 5000)
    assert_one_line_error(run(tmp_path, "models", "add", str(noise)), "not a GGUF")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model_path.read_bytes()[:50_000_000])
    assert_one_line_error(run(tmp_path, "models", "add", str(cut)), "truncated")


def test_download_verify_and_remove_through_the_cli(tmp_path, tiny_gguf):
    server = start_hub()
    server.hub.files[(REPO, FILE)] = tiny_gguf
    try:
        (tmp_path / "catalog.toml").write_text(
            f'[[model]]\nid = "tiny"\nname = "Tiny"\nparameters = "1M"\nquantisation = "F32"\n'
            f'repo = "{REPO}"\nfile = "{FILE}"\nsize = {len(tiny_gguf)}\nlicense = "test"\n'
            f'context_length = 256\nmin_ram_gb = 1\ntemplate = "chat"\n'
        )
        env = {"HF_ENDPOINT": server.url}
        fetched = run(tmp_path, "models", "download", "tiny", env=env)
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "models" / FILE).read_bytes() == tiny_gguf
        assert "OK" in run(tmp_path, "models", "verify", "tiny", env=env).stdout
        (tmp_path / "models" / FILE).write_bytes(tiny_gguf[:-1] + b"\x00")
        assert_one_line_error(run(tmp_path, "models", "verify", "tiny", env=env), "mismatch")
        assert run(tmp_path, "models", "remove", "tiny").returncode == 0
        assert not (tmp_path / "models" / FILE).exists()
        assert_one_line_error(run(tmp_path, "models", "download", "nope"), "Unknown model")
    finally:
        server.shutdown()


def test_download_with_no_network_is_one_line(tmp_path):
    env = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens on the discard port
    assert_one_line_error(run(tmp_path, "models", "download", "smollm2-135m", env=env), "Cannot reach")


def test_catalog_shape_unique_ids_plausible_sizes_and_sources():
    entries = load_catalog()
    assert len({e.id for e in entries}) == len(entries) and len({e.file for e in entries}) == len(entries)
    for e in entries:
        count = float(e.parameters[:-1]) * (1e9 if e.parameters.endswith("B") else 1e6)
        assert 0.3 <= e.size / count <= 2.2, f"{e.id}: {e.size / count:.2f} bytes a parameter"
        assert not e.checked or e.source.startswith("https://huggingface.co/"), e.id
        assert e.vocabulary, f"{e.id} names no vocabulary family (draft pairs need one)"
    assert next(e for e in entries if e.id == "llama-3-8b").repo != "QuantFactory/Meta-Llama-3-8B-GGUF"


def test_draft_partners_share_the_targets_vocabulary(tmp_path, monkeypatch, model_path):
    """The embedded Gemma 3 270M drafts for the Gemma 3 4B base; nothing of another family does."""
    from app.models.drafts import draft_partners

    monkeypatch.setenv("BASECHAT_DATA_DIR", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / model_path.name).symlink_to(model_path)
    assert [e.id for e in draft_partners("gemma3-4b")] == ["gemma3-270m"]
    assert draft_partners("qwen2.5-7b") == []  # none of its family is installed here
    assert "gemma3-270m" not in [e.id for e in draft_partners("llama-3.1-8b")]


def test_the_catalog_names_a_much_smaller_draft_for_a_large_model_of_its_vocabulary():
    from app.models.drafts import suggested_draft

    catalog = load_catalog()
    by_id = {e.id: e for e in catalog}
    assert suggested_draft(by_id["gemma3-4b"], catalog).id == "gemma3-270m"
    assert suggested_draft(by_id["qwen2.5-7b"], catalog).id == "qwen2.5-0.5b"
    assert suggested_draft(by_id["gemma3-270m"], catalog) is None  # nothing smaller drafts for it
    assert suggested_draft(by_id["mistral-nemo-12b"], catalog) is None  # no other Tekken model
