""" "Fits this computer": memory from the file and the KV cache, speed calibrated by the embedded
model's measured speed here."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.models.catalog import load_catalog
from app.models.fit import Machine, calibrated_bandwidth, estimate
from tests.helpers import basechat

GB = 1024**3


def entry(model_id: str):
    return next(e for e in load_catalog() if e.id == model_id)


def test_saved_states_take_less_ram_where_the_model_leaves_less():
    from app.engine.kvstate import ram_cap_for

    assert ram_cap_for(300 * 2**20, 16 * GB) == 32 * 2**20
    assert ram_cap_for(7 * GB, 8 * GB) == 0  # a 7B model nearly fills an 8 GB laptop
    assert 0 < ram_cap_for(int(6.8 * GB), 8 * GB) < 32 * 2**20


def test_memory_is_the_file_plus_the_kv_cache_plus_buffers_plus_saved_states():
    laptop = Machine(total_ram=16 * GB, available_ram=12 * GB, cores=8, cpu="x", bytes_per_s=20e9)
    llama2, mistral = entry("llama-2-7b"), entry("mistral-7b-v0.1")
    # Llama 2 7B keeps 32 KV heads (512 KB a position: 2 GB at 4k); Mistral shares 8 (0.5 GB);
    # the newest saved states may take 32 MB of RAM on a 16 GB laptop.
    assert estimate(llama2, laptop).est_ram_gb == pytest.approx(
        (4.08e9 + 2 * GB + 300 * 2**20 + 32 * 2**20) / GB, abs=0.01
    )
    assert estimate(mistral, laptop).est_ram_gb < estimate(llama2, laptop).est_ram_gb
    assert estimate(mistral, laptop).est_tokens_per_s == pytest.approx(20e9 / 4.37e9, abs=0.1)


def test_verdicts_follow_free_and_total_memory():
    model = entry("llama-3-8b")
    need = estimate(model, Machine(64 * GB, 64 * GB, 8, "x", 1e9)).est_ram_gb * GB
    assert estimate(model, Machine(64 * GB, int(need + 2 * GB), 8, "x", 1e9)).fits == "fits"
    assert estimate(model, Machine(64 * GB, int(need), 8, "x", 1e9)).fits == "tight"
    assert estimate(model, Machine(int(need), int(need), 8, "x", 1e9)).fits == "too big"
    unknown = replace(model, kv_bytes_per_token=0)
    assert estimate(unknown, Machine(64 * GB, 64 * GB, 8, "x", 1e9)).est_ram_gb > model.size / GB


@pytest.mark.model
def test_calibration_measures_the_embedded_model_once(model_path, tmp_path):
    calls = []

    def measure(path):
        from app.models.fit import measure_generation

        calls.append(path)
        return measure_generation(path, n_tokens=16)

    first = calibrated_bandwidth(model_path, tmp_path, measure)
    again = calibrated_bandwidth(model_path, tmp_path, measure)
    assert first == again and len(calls) == 1  # remembered in machine.json
    assert 1e8 < first < 1e12  # bytes a second: 0.1 GB/s to 1 TB/s
    stored = next(iter(json.loads((tmp_path / "machine.json").read_text()).values()))
    assert stored["model_bytes"] == model_path.stat().st_size and stored["tokens_per_s"] > 1


@pytest.mark.model
def test_models_list_json_has_the_fit_fields_offline(data_dir):
    result = basechat("--data-dir", str(data_dir), "models", "list", "--json",
                      extra_env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all({"fits", "est_ram_gb", "est_tokens_per_s"} <= set(row) for row in rows)
    speeds = {row["id"]: row["est_tokens_per_s"] for row in rows}
    assert speeds["smollm2-135m"] > speeds["gemma3-270m"] > speeds["llama-3-8b"] > 0
    assert {row["fits"] for row in rows} <= {"fits", "tight", "too big"}


@pytest.mark.model
def test_the_models_dialog_says_what_fits_here(qtbot, window):
    from app.ui.models_dialog import HERE, ModelsDialog

    dialog = ModelsDialog(window)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: getattr(dialog, "fits_shown", False), timeout=60_000)
    cells = [dialog.table.item(row, HERE).text() for row in range(dialog.table.rowCount())]
    assert all(c.split(" · ")[0] in ("fits", "tight", "too big") and c.endswith("tok/s") for c in cells)


def test_recommends_the_largest_model_that_fits_at_a_usable_speed():
    from app.models.fit import recommend

    entries = [e for e in load_catalog() if not e.embedded]

    def choice(bandwidth: float, ram: float):
        machine = Machine(total_ram=int(ram * GB), available_ram=int(ram * 0.75 * GB), cores=4, cpu="x",
                          bytes_per_s=bandwidth)  # fmt: skip
        return recommend(entries, {e.id: estimate(e, machine) for e in entries})

    assert choice(30e9, 16).id == "llama-3.1-8b"  # 6.4 tok/s; of two 8B files, the smaller
    assert choice(10e9, 16).id == "qwen2.5-3b"  # an 8B would crawl at 2 tok/s
    assert choice(2e9, 4).size < 0.5e9  # a slow little laptop: a small model
    assert choice(2e9, 1) is None  # nothing fits


@pytest.mark.model
def test_the_empty_chat_recommends_a_model_and_one_click_starts_its_download(qtbot, window, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the download fails fast
    qtbot.waitUntil(lambda: window.view.recommend.isVisible(), timeout=60_000)
    text = window.view.recommend.text()
    assert text.startswith("For better answers, download ") and "tokens/s here)" in text
    window.view.recommend.click()
    from PySide6.QtWidgets import QDialog

    dialog = next(w for w in window.findChildren(QDialog) if w.windowTitle() == "Models")
    assert window.models.recommended.id in dialog.cancels or "download" in dialog.message.text().lower()
    assert not window.view.recommend.isVisible()
