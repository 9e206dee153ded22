"""Settings → "Serve on this computer": the window's model as a local API server for other apps
(OpenAI's API under /v1, KoboldCpp's under /api), sharing the model with the window — a reply in
the window and a request to the server take turns — and a status line with the address, requests
served and requests waiting."""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, QTimer, Slot
from PySide6.QtWidgets import QLabel, QStatusBar

from app.engine.base import SamplingParams
from app.errors import BasechatError
from app.scaffold import DEFAULT_TEMPLATE
from app.server.address import DEFAULT_HOST, DEFAULT_PORT
from app.server.hub import Hub
from app.server.running import BackgroundServer
from app.ui.settings import load_sampling
from app.ui.worker import EngineWorker


def serving_wanted(settings: QSettings) -> tuple[bool, int]:
    """Whether to serve, and on which port (Settings' values, checked)."""
    on = str(settings.value("serve/on", "false")).lower() == "true"
    try:
        port = int(str(settings.value("serve/port", DEFAULT_PORT)))
    except (TypeError, ValueError):
        port = DEFAULT_PORT
    return on, port if 0 < port < 65536 else DEFAULT_PORT


class ServeSwitch(QObject):
    """Starts the server when Settings ask and a model is loaded; stops it before the model
    changes (it starts again on the new one) and when the window closes."""

    def __init__(self, worker: EngineWorker, settings: QSettings, status_bar: QStatusBar) -> None:
        super().__init__(status_bar)
        self.worker, self.settings, self.status_bar = worker, settings, status_bar
        self.server: BackgroundServer | None = None
        self.label = QLabel("")
        self.label.setAccessibleName("Server")
        self.label.hide()
        status_bar.addPermanentWidget(self.label)
        self.timer = QTimer(self, interval=1000)
        self.timer.timeout.connect(self.show_status)
        worker.model_ready.connect(self.on_model_ready)  # a method: queued to this (the GUI) thread

    @Slot(dict)
    def on_model_ready(self, _info: dict) -> None:
        self.apply()

    def apply(self) -> None:
        """Serve as Settings say, on the loaded model (a restart when it already serves)."""
        self.stop()
        on, port = serving_wanted(self.settings)
        if on and self.worker.engine is not None:
            self._start(port)

    def _start(self, port: int) -> None:
        engine = self.worker.engine
        assert engine is not None  # apply() checked
        hub = Hub(engine, self.worker.model_id, DEFAULT_TEMPLATE, load_sampling(self.settings),
                  turns=self.worker.turns)  # fmt: skip
        try:
            self.server = BackgroundServer(hub, DEFAULT_HOST, port)
        except BasechatError as exc:
            self.status_bar.showMessage(f"{exc} Change the port in Settings.", 15000)
            return
        self.label.show()
        self.timer.start()
        self.show_status()

    def use_sampling(self, params: SamplingParams) -> None:
        """Settings' new sampling, for the server's next requests."""
        if self.server is not None:
            self.server.hub.params = params

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.timer.stop()
        self.label.hide()

    def show_status(self) -> None:
        server = self.server
        if server is None:
            return
        if not server.running:
            self.label.setText("  Server stopped (see Basechat's log)")
            return
        hub = server.hub
        behind_the_window = hub.turn.locked() and self.worker.turns.holder == "the window"
        waiting = hub.waiting + int(behind_the_window)
        waiting_text = f" · {waiting} waiting" if waiting else ""
        served = f"{hub.served} request" + ("" if hub.served == 1 else "s")
        self.label.setText(f"  Serving at {server.address}/v1 · {served}{waiting_text}")
