"""Which catalog models fit this computer, and how fast they would likely run here.

Memory: the file (weights are memory-mapped and read whole) plus the KV cache at Basechat's
default context plus a fixed allowance for llama.cpp's buffers plus the RAM the newest saved
chat states may take (sized to the machine and the model). Speed: generating a token reads
every weight once, so tokens/s ≈ memory bandwidth / file size; the bandwidth is not guessed
from the hardware but calibrated once by the embedded model's measured speed on this machine
(kept in the data folder's ``machine.json``, keyed by CPU, cores and llama.cpp build).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import psutil

from app.engine.kvstate import ram_cap_for
from app.models.catalog import CatalogEntry
from app.paths import write_atomically

DEFAULT_CTX = 4096
OVERHEAD_BYTES = 300 * 1024**2  # compute buffers, the app itself (measured: RSS − file − KV ≈ 128 MB)
HEADROOM_BYTES = 1024**3  # what the rest of a desktop needs to stay responsive
GIB = 1024**3
Verdict = Literal["fits", "tight", "too big"]


@dataclass(frozen=True)
class Machine:
    total_ram: int
    available_ram: int
    cores: int
    cpu: str
    bytes_per_s: float  # effective bandwidth: the embedded model's tok/s × its file size


@dataclass(frozen=True)
class Fit:
    fits: Verdict
    est_ram_gb: float
    est_tokens_per_s: float


def estimate(entry: CatalogEntry, machine: Machine, n_ctx: int = DEFAULT_CTX) -> Fit:
    """ "fits": room to spare now; "tight": only if other programs close; "too big": not here."""
    kv = entry.kv_bytes_per_token * min(n_ctx, entry.context_length or n_ctx)
    if not entry.kv_bytes_per_token:
        kv = entry.size // 10  # unknown shape: about a tenth of the weights at 4k context
    need = entry.size + kv + OVERHEAD_BYTES + ram_cap_for(entry.size, machine.total_ram)
    if need + HEADROOM_BYTES <= machine.available_ram:
        verdict: Verdict = "fits"
    elif need + HEADROOM_BYTES <= machine.total_ram:
        verdict = "tight"
    else:
        verdict = "too big"
    speed = machine.bytes_per_s / entry.size if entry.size else 0.0
    return Fit(verdict, round(need / GIB, 2), round(speed, 1))


def this_machine(calibration: float) -> Machine:
    memory = psutil.virtual_memory()
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return Machine(int(memory.total), int(memory.available), cores, _cpu_name(), calibration)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _calibration_key() -> str:
    from importlib.metadata import version

    return f"{_cpu_name()}|{psutil.cpu_count(logical=False)}|llama-cpp-python {version('llama-cpp-python')}"


def _known_calibrations(folder: Path) -> dict:
    try:
        known = json.loads((folder / "machine.json").read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def known_bandwidth(folder: Path) -> float | None:
    """The calibration for this machine, if one was ever measured or recorded (else None)."""
    entry = _known_calibrations(folder).get(_calibration_key())
    if not isinstance(entry, dict):
        return None
    try:
        return float(entry["tokens_per_s"]) * float(entry["model_bytes"])
    except (TypeError, KeyError, ValueError):
        return None


def record_speed(model: Path, folder: Path, tokens_per_s: float) -> None:
    """Remember the embedded model's speed on this machine, measured by a real reply: the window
    calibrates from the person's own first reply instead of a run of its own beside it."""
    known = _known_calibrations(folder)
    known[_calibration_key()] = {"tokens_per_s": tokens_per_s, "model_bytes": model.stat().st_size}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "machine.json", json.dumps(known))


def calibrated_bandwidth(model: Path, folder: Path, measure=None) -> float:
    """Bytes a second this machine streams through a model while generating: measured once with
    the embedded model (``measure(path) -> tokens/s``) and remembered in ``machine.json``."""
    known = known_bandwidth(folder)
    if known is None:
        record_speed(model, folder, (measure or measure_generation)(model))
        known = known_bandwidth(folder)
    assert known is not None
    return known


def measure_generation(model: Path, n_tokens: int = 32, runs: int = 3) -> float:
    """Greedy tokens a second on the default threads, after a short warm-up: the best of a few
    runs, so a moment of load from another program does not stick in the calibration."""

    from app.engine.base import PLAIN_GREEDY
    from app.engine.factory import open_backend

    engine = open_backend(model, n_ctx=512)
    try:
        prompt = engine.start_tokens() + engine.tokenize("Counting from one upwards: 1, 2, 3, 4, 5,")
        greedy = replace(PLAIN_GREEDY, ignore_eos=True, max_tokens=4)
        engine.generate(prompt, greedy, []).run()
        timed = replace(greedy, max_tokens=n_tokens)
        return max(engine.generate(prompt, timed, []).run().usage.tokens_per_s for _ in range(runs))
    finally:
        engine.close()


MIN_USABLE_SPEED = 5.0  # tokens a second: slower than this, a chat feels stuck


def recommend(entries: list[CatalogEntry], fits: dict[str, Fit]) -> CatalogEntry | None:
    """The largest catalog model not yet here that fits and still answers at a usable speed."""
    candidates = [
        e for e in entries
        if not e.installed and fits[e.id].fits == "fits" and fits[e.id].est_tokens_per_s >= MIN_USABLE_SPEED
    ]  # fmt: skip
    return max(candidates, key=lambda e: (parameter_count(e.parameters), -e.size), default=None)


def parameter_count(label: str) -> float:
    """ "270M" → 2.7e8, "1.5B" → 1.5e9; anything else 0."""
    try:
        return float(label[:-1]) * {"M": 1e6, "B": 1e9}[label[-1].upper()]
    except (ValueError, KeyError, IndexError):
        return 0.0


def fits_here(entries: list[CatalogEntry]) -> dict[str, Fit]:
    """Every entry's estimate on this machine (calibrating first if it never was)."""
    from app.models.default import ensure_default_model
    from app.paths import data_dir

    return _estimates(entries, calibrated_bandwidth(ensure_default_model(), data_dir()))


def known_fits_here(entries: list[CatalogEntry]) -> dict[str, Fit] | None:
    """The estimates when this machine is calibrated already; None rather than measuring."""
    from app.paths import data_dir

    bandwidth = known_bandwidth(data_dir())
    return None if bandwidth is None else _estimates(entries, bandwidth)


def _estimates(entries: list[CatalogEntry], bandwidth: float) -> dict[str, Fit]:
    machine = this_machine(bandwidth)
    return {entry.id: estimate(entry, machine) for entry in entries}
