"""Generation and engine settings: app-wide defaults in QSettings, overrides per conversation."""

from __future__ import annotations

from dataclasses import asdict, fields, replace

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSettings, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.base import SET_PER_TURN, SamplingParams, ServerConfig
from app.engine.presets import PRESETS, preset_of
from app.models.drafts import DEFAULT_DRAFT, DRAFT_LOOKUP, DRAFT_OFF, draft_label
from app.server.address import DEFAULT_HOST, DEFAULT_PORT, base_url
from app.service import sampling_value
from app.ui import secrets
from app.ui.worker import DEFAULT_KV_CAP_MB, EngineSettings

_SAMPLING_RANGES = {
    "temperature": (0.0, 2.0, 0.05),
    "top_p": (0.0, 1.0, 0.01),
    "min_p": (0.0, 1.0, 0.01),
    "repeat_penalty": (0.5, 2.0, 0.01),
    "top_k": (0, 1000, 1),
    "repeat_last_n": (0, 4096, 1),
    "dry_multiplier": (0.0, 5.0, 0.05),
    "xtc_probability": (0.0, 1.0, 0.05),
    "max_tokens": (1, 8192, 1),
    "best_of": (1, 8, 1),
    "seed": (-1, 2**31 - 1, 1),
    "n_probs": (0, 20, 1),
}
WINDOW_DEFAULTS = {"n_probs": 5}  # the window records token probabilities unless told not to
DEFAULT_ALTERNATIVES = 1
_ENGINE_RANGES = {
    "n_ctx": (0, 131072, 256), "n_threads": (0, 256, 1), "n_gpu_layers": (-1, 999, 1),
    "kv_cap_mb": (0, 1_000_000, 256),
}  # fmt: skip
_LABELS = {
    "temperature": "Temperature", "top_p": "Top-p", "min_p": "Min-p", "top_k": "Top-k",
    "repeat_penalty": "Repeat penalty", "repeat_last_n": "Penalty window", "max_tokens": "Max reply tokens",
    "best_of": "Best of (short answers)",
    "seed": "Seed (-1 random)", "n_probs": "Token probabilities (top K, 0 off)",
    "dry_multiplier": "DRY (0 off)", "xtc_probability": "XTC chance (0 off)",
    "n_ctx": "Context size (0 auto)", "n_threads": "Threads (0 auto)",
    "n_gpu_layers": "GPU layers (-1 auto)", "kv_cap_mb": "Saved chat state on disk, MB (0 off)",
}  # fmt: skip


def load_sampling(settings: QSettings, overrides: dict | None = None) -> SamplingParams:
    values: dict = dict(WINDOW_DEFAULTS)
    for f in fields(SamplingParams):
        if f.name in SET_PER_TURN:
            continue
        stored = settings.value(f"sampling/{f.name}")
        if overrides and f.name in overrides:
            stored = overrides[f.name]
        if stored is not None and stored != "":
            values[f.name] = _cast(f.name, stored)
    if values.get("seed", -1) in (-1, None):
        values["seed"] = None
    return SamplingParams(**values)


def _cast(name: str, value):
    """QSettings' INI files give back strings ("true", "0.7"); the seed's -1 stays -1 here."""
    return -1 if name == "seed" and value in (-1, "-1") else sampling_value(name, value)


def save_sampling(settings: QSettings, params: SamplingParams) -> None:
    for key, value in asdict(params).items():
        if key not in SET_PER_TURN:
            settings.setValue(f"sampling/{key}", -1 if value is None else value)


def load_engine(settings: QSettings) -> EngineSettings:
    def get(key: str, auto: int):
        value = int(str(settings.value(f"engine/{key}", auto)))
        return None if value == auto else value

    return EngineSettings(
        n_ctx=get("n_ctx", 0), n_threads=get("n_threads", 0), n_gpu_layers=get("n_gpu_layers", -1),
        kv_cap_mb=int(str(settings.value("engine/kv_cap_mb", DEFAULT_KV_CAP_MB))),
        server=load_server(settings), draft=str(settings.value("engine/draft", DEFAULT_DRAFT)),
    )  # fmt: skip


def load_server(settings: QSettings) -> ServerConfig | None:
    """The server to use, when Settings say "Engine: Server"."""
    url = str(settings.value("engine/server_url", "") or "")
    if settings.value("engine/mode", "local") != "server" or not url:
        return None
    return ServerConfig(url, api_key=secrets.load_key(url))


_TIPS = {
    "temperature": "How adventurous the sampling is. 0 always takes the likeliest token (runs repeat).",
    "top_p": "Sample only from the likeliest tokens that together make up this share of probability.",
    "min_p": "Drop tokens less likely than this fraction of the likeliest one.",
    "top_k": "Sample only from the K likeliest tokens (0: all of them, slower).",
    "repeat_penalty": "Make tokens used in the last window less likely (1: off).",
    "repeat_last_n": "How many recent tokens the repeat penalty looks back over.",
    "dry_multiplier": "Don't repeat yourself: the longer a reply copies earlier text, the less likely "
    "it goes on copying (a newline or a colon ends a copy). Stops loops without touching names.",
    "xtc_probability": "Exclude top choices: how often the likeliest words are set aside for a less "
    "obvious one that is still likely (stories; 0 for facts).",
    "max_tokens": "The longest a reply may be, in tokens (at most half the context).",
    "best_of": "Draw a short answer this many times at once and show the likeliest: a small model's "
    "first draw of a fact is often not its best guess. Shown when all are done (1: off, streamed).",
    "seed": "The same seed and settings give the same reply again; -1 picks a new one each time.",
    "n_probs": "Keep each token's K likeliest alternatives, to see them and branch from any token.",
    "n_ctx": "How many tokens the model sees at once: the frame, the chat and the reply (0: 4096).",
    "n_threads": "CPU threads for the model (0: the physical cores).",
    "n_gpu_layers": "Layers to run on the GPU or Metal (-1: all where there is one; 0: CPU only).",
    "kv_cap_mb": "Disk for saved chat state, so reopened chats answer at once (0: keep none).",
}


def _state_ram_text(megabytes: int | None) -> str:
    if megabytes is None:
        return "sized to this computer and the model once one is loaded"
    return f"up to {megabytes:,} MB for the newest chats, sized to this computer and model (the rest on disk)"


class SettingsDialog(QDialog):
    """Edits the defaults; 'engine' values take effect when the model is next loaded."""

    def __init__(
        self, params: SamplingParams, engine: EngineSettings, parent=None, alternatives: int = 1,
        state_ram_mb: int | None = None, draft_models: tuple[str, ...] = (),
        serve: tuple[bool, int] = (False, DEFAULT_PORT),
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        column = QVBoxLayout(self)
        self.fields_area, form = _scrolled_form()
        column.addWidget(self.fields_area)
        form.addRow(_heading("Sampling — applies to this chat and to new chats"))
        self._params = params
        self._number_fields(form, _shown_values(params, engine))
        self.presets = PresetFields(params, self.fields, form)
        self.state_ram = QLabel(_state_ram_text(state_ram_mb))
        self.state_ram.setAccessibleName("Saved chat state in RAM")
        form.addRow("Saved chat state in RAM", self.state_ram)
        self.draft = _draft_box(engine.draft, draft_models)
        form.addRow("Speed up replies", self.draft)
        self.server = ServerFields(engine.server, form)
        form.addRow(_heading("Loom — applies to every chat"))
        self.alternatives = QSpinBox()
        self.alternatives.setRange(1, 8)
        self.alternatives.setValue(alternatives)
        self.alternatives.setAccessibleName("Alternatives per reply")
        self.alternatives.setToolTip(
            "Replies written at once for every message; pick one, the rest stay as versions."
        )
        form.addRow("Alternatives per reply", self.alternatives)
        self.serve = ServeFields(serve, form)
        column.addWidget(self._buttons())
        _fit(self.fields_area, form)
        self._wheel_guard = WheelScrolls(self.fields_area)

    def _number_fields(self, form: QFormLayout, values: dict) -> None:
        for name, (low, high, step) in {**_SAMPLING_RANGES, **_ENGINE_RANGES}.items():
            if name == "n_ctx":
                form.addRow(_heading("Engine — applies to every chat; the model reloads on OK"))
            box = _spin_box(low, high, step)
            box.setValue(values[name])
            box.setAccessibleName(_LABELS[name])
            box.setToolTip(_TIPS[name])
            form.addRow(_LABELS[name], box)
            self.fields[name] = box

    def _buttons(self) -> QDialogButtonBox:
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )  # fmt: skip
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.setToolTip("Basechat's own defaults for every number above")
        restore.clicked.connect(self.restore_defaults)
        return buttons

    def restore_defaults(self) -> None:
        defaults = {**asdict(SamplingParams()), **WINDOW_DEFAULTS, "seed": -1, "n_ctx": 0, "n_threads": 0,
                    "n_gpu_layers": -1, "kv_cap_mb": DEFAULT_KV_CAP_MB}  # fmt: skip
        for name, box in self.fields.items():
            box.setValue(defaults[name])
        self.alternatives.setValue(DEFAULT_ALTERNATIVES)
        self.draft.setCurrentIndex(self.draft.findData(DEFAULT_DRAFT))
        self.presets.scope.setChecked(SamplingParams().penalize_prompt)
        self._params = SamplingParams()

    def sampling(self) -> SamplingParams:
        values = {name: _cast(name, self.fields[name].value()) for name in _SAMPLING_RANGES}
        seed = int(values.pop("seed"))
        chosen = {
            **values,
            "seed": None if seed < 0 else seed,
            "penalize_prompt": self.presets.scope.isChecked(),
        }
        return replace(self._params, **chosen)

    def save_engine(self, settings: QSettings) -> str:
        """Store the engine fields; returns a notice for the status bar (or "")."""
        for name in _ENGINE_RANGES:
            settings.setValue(f"engine/{name}", self.fields[name].value())
        settings.setValue("engine/draft", self.draft.currentData())
        return self.server.save(settings)


class ServeFields:
    """Serve on this computer: other apps (SillyTavern, Open WebUI, editors, scripts) use the
    window's model through OpenAI's and KoboldCpp's APIs, on this computer only."""

    def __init__(self, serve: tuple[bool, int], form: QFormLayout) -> None:
        form.addRow(_heading("Server — other apps on this computer use the model"))
        self.on = QCheckBox("Serve on this computer")
        self.on.setChecked(serve[0])
        self.on.setAccessibleName("Serve on this computer")
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(serve[1])
        self.port.setAccessibleName("Server port")
        self.address = QLabel("")
        self.port.valueChanged.connect(self._show_address)
        self._show_address()
        form.addRow(self.on)
        form.addRow("Port", self.port)
        form.addRow("Address for other apps", self.address)

    def _show_address(self) -> None:
        url = base_url(DEFAULT_HOST, self.port.value())
        self.address.setText(f"{url}/v1 (OpenAI) · {url}/api (KoboldCpp)")
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def save(self, settings: QSettings) -> bool:
        """Store the switch and port; True when they changed."""
        before = (settings.value("serve/on"), settings.value("serve/port"))
        settings.setValue("serve/on", "true" if self.on.isChecked() else "false")
        settings.setValue("serve/port", self.port.value())
        return before != (settings.value("serve/on"), settings.value("serve/port"))


class PresetFields:
    """A preset (Precise / Balanced / Creative, as KoboldCpp and SillyTavern users expect) fills the
    sampling numbers, which stay editable; and whether the repeat penalty sees the prompt."""

    def __init__(self, params: SamplingParams, fields: dict, form: QFormLayout) -> None:
        self.fields = fields
        self.box = QComboBox()
        self.box.addItem("Custom", "")
        for name in PRESETS:
            self.box.addItem(name.capitalize(), name)
        self.box.setCurrentIndex(max(0, self.box.findData(preset_of(params))))
        self.box.setAccessibleName("Preset")
        self.box.setToolTip("Fills the sampling numbers above; change any of them afterwards.")
        self.box.activated.connect(lambda _index: self.apply())
        form.insertRow(1, "Preset", self.box)
        self.scope = QCheckBox("Repeat penalty and DRY also look back over the prompt")
        self.scope.setChecked(params.penalize_prompt)
        self.scope.setToolTip(
            "Off: only the reply's own tokens are penalised, so the names you gave stay likely."
        )
        form.insertRow(2, self.scope)

    def apply(self) -> None:
        for key, value in PRESETS.get(self.box.currentData(), {}).items():
            if key in self.fields:
                self.fields[key].setValue(value)


_DRAFT_TIP = (
    "Guess a few tokens ahead and let the model check them all in one step: the reply is the same, "
    "sooner when it repeats earlier text. From the text: guesses come from the chat itself (costs "
    "nothing when they miss). A draft model: a small model of the same vocabulary guesses."
)


def _draft_box(current: str, models: tuple[str, ...]) -> QComboBox:
    """Off, from the text, or one of the installed models that can draft for the loaded one."""
    box = QComboBox()
    for choice in (DRAFT_OFF, DRAFT_LOOKUP, *models):
        box.addItem(draft_label(choice), choice)
    if box.findData(current) < 0:  # a draft model since removed: shown, so OK keeps it visibly
        box.addItem(draft_label(current), current)
    box.setCurrentIndex(box.findData(current))
    box.setAccessibleName("Speed up replies")
    box.setToolTip(_DRAFT_TIP)
    return box


def _shown_values(params: SamplingParams, engine: EngineSettings) -> dict:
    """Every number the dialog shows; "auto" and "random" as the sentinel the spin box can hold."""
    values = {**asdict(params), "seed": params.seed if params.seed is not None else -1}
    for key, (low, _high, _step) in _ENGINE_RANGES.items():
        value = getattr(engine, key)
        values[key] = value if value is not None else low
    if engine.n_gpu_layers is None:
        values["n_gpu_layers"] = -1
    return values


def _scrolled_form() -> tuple[QScrollArea, QFormLayout]:
    """The fields in a scrolling area (the buttons go below it): the dialog fits a laptop's screen."""
    inner = QWidget()
    form = QFormLayout(inner)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(inner)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area, form


class WheelScrolls(QObject):
    """The mouse wheel over a number or a list scrolls the dialog instead of changing the value,
    unless that field was clicked first: scrolling to the last field must not change the ones
    passed on the way."""

    def __init__(self, area: QScrollArea) -> None:
        super().__init__(area)
        self.bar = area.verticalScrollBar()
        for field in area.findChildren(QAbstractSpinBox) + area.findChildren(QComboBox):
            field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            field.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            QCoreApplication.sendEvent(self.bar, event)
            return True
        return False


def _fit(area: QScrollArea, form: QFormLayout) -> None:
    """As wide as the fields, as tall as they are or three quarters of the screen."""
    hint = form.sizeHint()
    screen = area.screen().availableGeometry().height()
    area.setMinimumSize(hint.width() + area.verticalScrollBar().sizeHint().width(),
                        min(hint.height(), int(screen * 0.75)))  # fmt: skip


def _heading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setAccessibleName(text)
    return label


def _spin_box(low: float, high: float, step: float) -> QSpinBox | QDoubleSpinBox:
    """Whole numbers get a QSpinBox, the rest a QDoubleSpinBox."""
    if isinstance(step, int):
        whole = QSpinBox()
        whole.setRange(int(low), int(high))
        whole.setSingleStep(step)
        return whole
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    return box


class ServerFields:
    """ "Engine: This computer / Server", the server's URL and API key, and a connection test."""

    def __init__(self, server: ServerConfig | None, form: QFormLayout) -> None:
        self.mode = QComboBox()
        self.mode.addItems(["This computer", "Server"])
        self.mode.setAccessibleName("Engine")
        self.mode.setCurrentIndex(1 if server else 0)
        self.url = QLineEdit(server.url if server else "")
        self.url.setPlaceholderText("http://127.0.0.1:8080 (llama-server, vLLM, any /v1/completions)")
        self.url.setAccessibleName("Server URL")
        self.key = QLineEdit(server.api_key or "" if server else "")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional")
        self.key.setAccessibleName("API key")
        self.test = QPushButton("Test connection")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setAccessibleName("Connection result")
        self.test.clicked.connect(self.run_test)
        for label, widget in (("Engine", self.mode), ("Server URL", self.url), ("API key", self.key)):
            form.addRow(label, widget)
        form.addRow(self.test, self.result)
        self.mode.currentIndexChanged.connect(self._enable)
        self._enable()

    def _enable(self) -> None:
        remote = self.mode.currentIndex() == 1
        for widget in (self.url, self.key, self.test):
            widget.setEnabled(remote)

    def config(self) -> ServerConfig:
        return ServerConfig(self.url.text().strip(), api_key=self.key.text().strip() or None)

    def run_test(self) -> None:
        """Connect off the GUI thread; show the server's model and context size."""
        from app.ui.background import run_in_background

        config = self.config()
        self.result.setText("Connecting…")
        self.test.setEnabled(False)
        run_in_background(lambda _report: describe_server(config), self._tested, self._failed)

    def _tested(self, info) -> None:
        self.test.setEnabled(True)
        self.result.setText(f"Connected: {info.name} · {info.device} · context {info.n_ctx}")

    def _failed(self, message: str) -> None:
        self.test.setEnabled(True)
        self.result.setText(message)

    def save(self, settings: QSettings) -> str:
        remote = self.mode.currentIndex() == 1 and bool(self.url.text().strip())
        settings.setValue("engine/mode", "server" if remote else "local")
        settings.setValue("engine/server_url", self.url.text().strip())
        if remote:
            return secrets.save_key(self.url.text().strip(), self.key.text().strip())
        return ""


def describe_server(config: ServerConfig):
    from app.engine.factory import open_backend

    engine = open_backend(server=config)
    try:
        return engine.describe()
    finally:
        engine.close()
