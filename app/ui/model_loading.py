"""Model loading for the window: the toolbar's model picker, the engine worker's load signals,
the status line (model · device · tokens used · speed) and the one-click recommendation of a
better model that fits this computer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.errors import BasechatError
from app.models.catalog import CatalogEntry, load_catalog
from app.models.default import DEFAULT_MODEL_ID
from app.ui.settings import load_engine, load_server
from app.ui.worker import SERVER_ID

MIN_TOKENS_TO_CALIBRATE = 32  # a reply this long times the machine as well as the calibration run did

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class ModelLoading(QObject):
    """A QObject on the GUI thread, so the worker's signals reach it queued."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.recommended: CatalogEntry | None = None  # what the empty chat suggests downloading
        self.used = 0  # tokens the last reply's prompt and text took
        self.speed = ""
        self.calibrated = False  # this machine's speed is known (read once, not at every reply)
        worker = window.worker
        worker.model_loading.connect(self.on_loading)
        worker.model_ready.connect(self.on_ready)
        worker.model_failed.connect(self.on_failed)
        window.model_picker.activated.connect(lambda _index: self.pick())
        window.view.recommend.clicked.connect(self.download_recommended)

    def load(self, model_id: str) -> None:
        """Load a local model by id, or the server when Settings say "Engine: Server". The
        window's own server stops first (it serves the new model once it is loaded)."""
        self.w.serving.stop()
        engine = load_engine(self.w.settings)
        if engine.server is not None:
            self.w.request_load.emit(SERVER_ID, "", engine)
            return
        try:
            from app.models.catalog import resolve_model

            model_id, path = resolve_model(model_id if model_id != SERVER_ID else None)
        except BasechatError as exc:
            self.on_failed(str(exc))
            return
        self.w.request_load.emit(model_id, str(path), engine)

    def fill_picker(self) -> None:
        picker, info = self.w.model_picker, self.w.model_info
        picker.clear()
        for entry in load_catalog():
            if entry.installed or entry.embedded:
                picker.addItem(entry.name, entry.id)
        server = load_server(self.w.settings)
        if server is not None:
            remote = info.get("name") if info.get("kind") == "remote" else None
            picker.addItem(f"{remote or server.url} (server)", SERVER_ID)
        current = info.get("id") or self.w.settings.value("model", DEFAULT_MODEL_ID)
        picker.setCurrentIndex(max(picker.findData(current), 0))

    def pick(self) -> None:
        model_id = self.w.model_picker.currentData()
        if model_id and model_id != self.w.model_info.get("id"):
            self.w.replies.abandon()  # the load is queued behind the stopping reply on the worker
            self.w.settings.setValue("engine/mode", "server" if model_id == SERVER_ID else "local")
            self.load(model_id)

    # -- the worker's answers ---------------------------------------------------------------

    def on_loading(self, model_id: str) -> None:
        self.w.status_line.setText(f"Loading {model_id}…")
        self.w.busy.show()
        self.w.composer.button.setEnabled(False)

    def on_ready(self, info: dict) -> None:
        w = self.w
        w.model_info = {**info, "label": _model_label(info)}
        if info["kind"] == "local":
            w.settings.setValue("model", info["id"])
            w.device_label.setText(f"  {info['device']} · {info['threads']} threads")
        else:
            w.device_label.setText(f"  {info['device']} at {info['location']}")
        w.busy.hide()
        self.show_usage(0, "")
        w.frame.engine_note.setText(info["note"])
        if info.get("draft_note"):
            w.statusBar().showMessage(info["draft_note"], 15000)
        self._recommend_a_model()
        w.composer.button.setEnabled(True)
        self.fill_picker()
        if info.get("instruct"):
            w.statusBar().showMessage(
                "This model looks instruction-tuned; Basechat is made for base models.", 10000
            )
        w.frames.inspect_prompt()
        w.replies.send_waiting()

    def on_failed(self, message: str) -> None:
        w = self.w
        w.busy.hide()
        if not w.model_info:
            w.status_line.setText("No model loaded")
        w.composer.button.setEnabled(bool(w.model_info))
        w.statusBar().showMessage(message, 15000)
        self.fill_picker()

    # -- the status line ----------------------------------------------------------------------

    def show_usage(self, used: int, speed: str) -> None:
        """One line: model · device · tokens used / context · speed of the last reply (when it
        was long enough for the figure to mean something)."""
        self.used, self.speed = used, speed
        info = self.w.model_info
        if info:
            parts = [info["label"], info["device"], f"{used:,} / {info['n_ctx']:,} tokens"]
            self.w.status_line.setText(" · ".join(parts + ([speed] if speed else [])))

    # -- a better model ------------------------------------------------------------------------

    def calibrate_from(self, tokens: int, tokens_per_s: float) -> None:
        """A reply of the embedded model long enough to time is this machine's calibration, kept
        once; the suggestion of a better model follows from it."""
        from pathlib import Path

        from app.models.fit import known_bandwidth, record_speed
        from app.paths import data_dir

        info = self.w.model_info or {}
        if self.calibrated or info.get("id") != DEFAULT_MODEL_ID or tokens < MIN_TOKENS_TO_CALIBRATE:
            return
        self.calibrated = known_bandwidth(data_dir()) is not None
        if not self.calibrated:
            record_speed(Path(info["location"]), data_dir(), tokens_per_s)  # the file it ran
            self.calibrated = True
            self._recommend_a_model()

    def _recommend_a_model(self) -> None:
        """With only the embedded model here, a new chat suggests the best one that fits."""
        from app.ui.background import run_in_background

        entries = load_catalog()
        if not any(e.installed and not e.embedded for e in entries):
            run_in_background(
                lambda _report: _best_fit(entries),
                self._show_recommendation,
                lambda _m: None,
                owner=self.w.view,
            )

    def _show_recommendation(self, choice) -> None:
        if choice is None:
            return
        entry, fit = choice
        self.recommended = entry
        view = self.w.view
        view.recommend.setText(
            f"For better answers, download {entry.name} ({entry.size / 1e9:.1f} GB, "
            f"about {fit.est_tokens_per_s:.0f} tokens/s here)"
        )
        view.recommend.setVisible(not view.turns)

    def download_recommended(self) -> None:
        """One click: the model manager opens with the recommended model downloading."""
        if self.recommended is None:
            return
        wanted = self.recommended.id
        dialog = self.models_dialog()
        dialog.start_download(next(i for i, e in enumerate(load_catalog()) if e.id == wanted))
        self.w.view.recommend.hide()
        self.w.view.recommend.setText("")
        dialog.show()

    def models_dialog(self):
        from app.ui.models_dialog import ModelsDialog

        dialog = ModelsDialog(self.w)
        dialog.models_changed.connect(self.fill_picker)
        return dialog

    def open_models(self) -> None:
        self.models_dialog().exec()


def _model_label(info: dict) -> str:
    """The catalog's name for a local model ("Gemma 3 270M (base)"), else the engine's; looked up
    once when the model is ready, not at every status update."""
    entry = next((e for e in load_catalog() if e.id == info.get("id")), None)
    return entry.name if entry is not None else info.get("name", "")


def _best_fit(entries: list[CatalogEntry]):
    """Only from a known calibration: measuring here would run a second model beside the first
    reply (it showed "writing…" for seconds); the first reply calibrates instead."""
    from app.models.fit import known_fits_here, recommend

    fits = known_fits_here(entries)
    entry = recommend(entries, fits) if fits is not None else None
    return (entry, fits[entry.id]) if entry and fits else None
