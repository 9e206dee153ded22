"""The model manager: the catalog with sizes and RAM needs, downloads with progress, local files.

Signals: models_changed().
"""

from __future__ import annotations

import threading
from pathlib import Path

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.models.catalog import CatalogEntry, forget_local_model, load_catalog
from app.ui.background import run_in_background

COLUMNS = ["Model", "Parameters", "Quant", "Size", "RAM", "On this computer", "Status", ""]
HERE = COLUMNS.index("On this computer")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class ModelsDialog(QDialog):
    models_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(820, 420)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Model catalog")
        self.table.verticalHeader().hide()
        self.message = QLabel("")
        self.open_button = QPushButton("Open GGUF file…")
        self.open_button.clicked.connect(self._open_file)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(self.open_button)
        bottom.addWidget(self.message, 1)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(bottom)
        self.cancels: dict[str, threading.Event] = {}
        self.fits: dict = {}
        self.refresh()
        self._estimate(load_catalog())

    def refresh(self) -> None:
        entries = load_catalog()
        self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            state = "installed" if entry.installed else "available"
            cells = [entry.name, entry.parameters, entry.quantisation, f"{entry.size / 1e9:.2f} GB",
                     f"{entry.min_ram_gb:g} GB", "…", state]  # fmt: skip
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
            self.table.setCellWidget(row, len(COLUMNS) - 1, self._action(entry, row))
        if self.fits:
            self._show_fits(self.fits)
        self.table.resizeColumnsToContents()
        # The name column takes the room left, so the table fills its dialog at any size.
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def _estimate(self, entries: list[CatalogEntry]) -> None:
        """Fits / tight / too big and the likely speed here; the first time, the embedded model
        is timed for a second, so this runs off the GUI thread."""
        from app.models.fit import fits_here
        from app.ui.background import run_in_background

        run_in_background(lambda _report: fits_here(entries), self._show_fits, lambda _message: None)

    def _show_fits(self, fits: object) -> None:
        if not isinstance(fits, dict) or not shiboken6.isValid(self.table):
            return  # the dialog closed before the estimate came back
        self.fits = fits
        for row, entry in enumerate(load_catalog()):
            fit = fits.get(entry.id)
            if fit is not None:
                text = f"{fit.fits} · {fit.est_ram_gb:g} GB · ~{fit.est_tokens_per_s:g} tok/s"
                self.table.setItem(row, HERE, QTableWidgetItem(text))
        self.table.resizeColumnToContents(HERE)
        self.fits_shown = True

    def _action(self, entry: CatalogEntry, row: int) -> QPushButton:
        if entry.id in self.cancels:
            button = QPushButton("Cancel")
            button.clicked.connect(self.cancels[entry.id].set)
        elif entry.installed and not entry.embedded:
            button = QPushButton("Delete" if not entry.local_file else "Forget")
            button.clicked.connect(lambda: self._delete(entry))
        elif entry.installed:
            button = QPushButton("Built in")
            button.setEnabled(False)
        else:
            button = QPushButton("Download")
            button.clicked.connect(lambda: self._download(entry, row))
        button.setAccessibleName(f"{button.text()} {entry.name}")
        return button

    def _download(self, entry: CatalogEntry, row: int) -> None:
        from app.models.download import download

        cancel = self.cancels[entry.id] = threading.Event()
        bar = QProgressBar()
        bar.setAccessibleName(f"Download progress of {entry.name}")
        bar.setMaximum(1000)
        self.table.setCellWidget(row, 5, bar)
        self.table.setCellWidget(row, len(COLUMNS) - 1, self._action(entry, row))

        def progress(p) -> None:
            bar.setValue(int(p.fraction * 1000))
            bar.setFormat(f"{p.fraction:.0%} · {p.speed_bps / 1e6:.1f} MB/s · {_eta(p.eta_s)} left")

        def finished(message: str) -> None:
            self.cancels.pop(entry.id, None)
            self.table.removeCellWidget(row, 5)
            self.message.setText(message)
            self.refresh()
            self.models_changed.emit()

        run_in_background(
            lambda report: download(entry, report, cancel),
            lambda _path: finished(f"{entry.name} is ready."),
            finished,
            progress,
        )

    def _delete(self, entry: CatalogEntry) -> None:
        if entry.local_file:
            forget_local_model(entry.id)
        else:
            answer = QMessageBox.question(self, "Delete model", f"Delete {entry.name} from this computer?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            entry.local_path.unlink(missing_ok=True)
        self.refresh()
        self.models_changed.emit()

    def _open_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Open GGUF file", "", "GGUF models (*.gguf)")
        if path:
            self.add_file(Path(path))

    def add_file(self, path: Path) -> None:
        from app.models.local import add_local_model

        self.message.setText(f"Checking {path.name}…")

        def added(result) -> None:
            entry, _info, warning = result
            self.message.setText(f"Added {entry.name}." + (f" Note: {warning}." if warning else ""))
            self.refresh()
            self.models_changed.emit()

        run_in_background(lambda _report: add_local_model(path), added, self.message.setText)
