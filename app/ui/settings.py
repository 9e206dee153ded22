"""Generation and engine settings: app-wide defaults in QSettings, overrides per conversation."""

from __future__ import annotations

from dataclasses import asdict, fields

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
)

from app.engine.base import SamplingParams
from app.ui.worker import EngineSettings

_SAMPLING_RANGES = {
    "temperature": (0.0, 2.0, 0.05),
    "top_p": (0.0, 1.0, 0.01),
    "min_p": (0.0, 1.0, 0.01),
    "repeat_penalty": (0.5, 2.0, 0.01),
    "top_k": (0, 1000, 1),
    "repeat_last_n": (0, 4096, 1),
    "max_tokens": (1, 8192, 1),
    "seed": (-1, 2**31 - 1, 1),
}
_ENGINE_RANGES = {"n_ctx": (0, 131072, 256), "n_threads": (0, 256, 1), "n_gpu_layers": (-1, 999, 1)}
_LABELS = {
    "temperature": "Temperature", "top_p": "Top-p", "min_p": "Min-p", "top_k": "Top-k",
    "repeat_penalty": "Repeat penalty", "repeat_last_n": "Penalty window", "max_tokens": "Max reply tokens",
    "seed": "Seed (-1 random)", "n_ctx": "Context size (0 auto)", "n_threads": "Threads (0 auto)",
    "n_gpu_layers": "GPU layers (-1 auto)",
}  # fmt: skip


def load_sampling(settings: QSettings, overrides: dict | None = None) -> SamplingParams:
    values = {}
    for f in fields(SamplingParams):
        stored = settings.value(f"sampling/{f.name}")
        if overrides and f.name in overrides:
            stored = overrides[f.name]
        if stored is not None and stored != "":
            values[f.name] = _cast(f.name, stored)
    if values.get("seed", -1) in (-1, None):
        values["seed"] = None
    return SamplingParams(**values)


def _cast(name: str, value):
    kind = int if name in ("top_k", "repeat_last_n", "max_tokens", "seed") else float
    return kind(value)


def save_sampling(settings: QSettings, params: SamplingParams) -> None:
    for key, value in asdict(params).items():
        settings.setValue(f"sampling/{key}", -1 if value is None else value)


def load_engine(settings: QSettings) -> EngineSettings:
    def get(key: str, auto: int):
        value = int(settings.value(f"engine/{key}", auto))
        return None if value == auto else value

    return EngineSettings(
        n_ctx=get("n_ctx", 0), n_threads=get("n_threads", 0), n_gpu_layers=get("n_gpu_layers", -1)
    )


class SettingsDialog(QDialog):
    """Edits the defaults; 'engine' values take effect when the model is next loaded."""

    def __init__(self, params: SamplingParams, engine: EngineSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        form = QFormLayout(self)
        values = {**asdict(params), "seed": params.seed if params.seed is not None else -1}
        values.update({k: (v if v is not None else _ENGINE_RANGES[k][0]) for k, v in asdict(engine).items()})
        if engine.n_gpu_layers is None:
            values["n_gpu_layers"] = -1
        for name, (low, high, step) in {**_SAMPLING_RANGES, **_ENGINE_RANGES}.items():
            box = QSpinBox() if isinstance(step, int) else QDoubleSpinBox()
            box.setRange(low, high)
            box.setSingleStep(step)
            box.setValue(values[name])
            box.setAccessibleName(_LABELS[name])
            form.addRow(_LABELS[name], box)
            self.fields[name] = box
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def sampling(self) -> SamplingParams:
        values = {name: self.fields[name].value() for name in _SAMPLING_RANGES}
        values["seed"] = None if values["seed"] < 0 else values["seed"]
        return SamplingParams(**{k: _cast(k, v) if v is not None else None for k, v in values.items()})

    def save_engine(self, settings: QSettings) -> None:
        for name in _ENGINE_RANGES:
            settings.setValue(f"engine/{name}", self.fields[name].value())
