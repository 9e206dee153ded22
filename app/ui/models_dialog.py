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
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.models.catalog import CatalogEntry, forget_local_model, load_catalog
from app.models.drafts import suggested_draft
from app.ui.background import run_in_background

COLUMNS = ["Model", "Parameters", "Quant", "Size", "RAM", "On this computer", "Status", ""]
HERE = COLUMNS.index("On this computer")
STATUS = COLUMNS.index("Status")
MORE_COLUMNS = ["Where", "File", "Size", "Kind", ""]


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class ModelsDialog(QDialog):
    models_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(1000, 640)
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
        layout.addWidget(self.table, 2)
        layout.addLayout(self._search_row())
        self.more = QTableWidget(0, len(MORE_COLUMNS))
        self.more.setHorizontalHeaderLabels(MORE_COLUMNS)
        self.more.setAccessibleName("Found on this computer and on the Hub")
        self.more.verticalHeader().hide()
        layout.addWidget(self.more, 1)
        layout.addLayout(bottom)
        self.cancels: dict[str, threading.Event] = {}
        self.fits: dict = {}
        self.refresh()
        self._estimate(load_catalog())
        self.show_found()

    def refresh(self) -> None:
        entries = load_catalog()
        self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            state = "installed" if entry.installed else "available"
            cells = [entry.name, entry.parameters, entry.quantisation, f"{entry.size / 1e9:.2f} GB",
                     f"{entry.min_ram_gb:g} GB", "…", state]  # fmt: skip
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(_draft_tip(entry, entries) if column == 0 else "")
                self.table.setItem(row, column, item)
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

        run_in_background(
            lambda _report: fits_here(entries), self._show_fits, lambda _message: None, owner=self
        )

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

    # -- beyond the catalog: files other tools downloaded, and the Hub ---------------------------

    def _search_row(self) -> QHBoxLayout:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the Hugging Face Hub for GGUF models (base models first)")
        self.search.setAccessibleName("Search the Hub")
        self.search.returnPressed.connect(self.search_hub)
        button = QPushButton("Search")
        button.clicked.connect(self.search_hub)
        row = QHBoxLayout()
        row.addWidget(self.search, 1)
        row.addWidget(button)
        return row

    def show_found(self) -> None:
        """GGUF files LM Studio, GPT4All, Ollama or the Hugging Face cache already hold."""
        from app.models.found import find_local_models

        run_in_background(
            lambda _report: find_local_models(), self._list_found, self.message.setText, owner=self
        )

    def _list_found(self, found: object) -> None:
        if not isinstance(found, list) or not shiboken6.isValid(self.more):
            return
        for model in found:
            kind = "instruct" if model.instruct else "base"
            use = QPushButton("Use")
            use.setToolTip("Use this file where it is (it is checked first, not copied)")
            use.clicked.connect(lambda _=False, p=model.path: self.add_file(p))
            self._add_more_row([model.app, model.name, f"{model.size / 1e9:.2f} GB", kind], use)

    def search_hub(self) -> None:
        from app.models.search import search_hub

        query = self.search.text().strip()
        if query:
            self.message.setText(f"Searching the Hub for '{query}'…")
            run_in_background(
                lambda _report: search_hub(query), self._list_results, self.message.setText, owner=self
            )

    def _list_results(self, results: object) -> None:
        if not isinstance(results, list) or not shiboken6.isValid(self.more):
            return
        self.message.setText(f"{len(results)} GGUF files found." if results else "No GGUF files found.")
        for result in results:
            get = QPushButton("Download")
            get.clicked.connect(lambda _=False, r=result: self._download_result(r))
            cells = [f"Hub: {result.repo}", result.file, f"{result.size / 1e9:.2f} GB", result.kind]
            self._add_more_row(cells, get)

    def _download_result(self, result) -> None:
        """A Hub file joins the person's own models, downloaded like a catalog entry."""
        from dataclasses import replace

        from app.models.catalog import save_local_model
        from app.models.download import download

        entry = result.entry()
        self.message.setText(f"Downloading {result.file}…")

        def done(path) -> None:
            save_local_model(replace(entry, local_file=str(path)))
            self.message.setText(f"{result.file} is ready.")
            self.refresh()
            self.models_changed.emit()

        run_in_background(lambda report: download(entry, report), done, self.message.setText)

    def _add_more_row(self, cells: list[str], button: QPushButton) -> None:
        row = self.more.rowCount()
        self.more.insertRow(row)
        for column, text in enumerate(cells):
            self.more.setItem(row, column, QTableWidgetItem(text))
        button.setAccessibleName(f"{button.text()} {cells[1]}")
        self.more.setCellWidget(row, len(MORE_COLUMNS) - 1, button)
        self.more.resizeColumnsToContents()

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

    def start_download(self, row: int) -> None:
        self._download(load_catalog()[row], row)

    def _download(self, entry: CatalogEntry, row: int) -> None:
        from app.models.download import download

        cancel = self.cancels[entry.id] = threading.Event()
        bar = QProgressBar()
        bar.setAccessibleName(f"Download progress of {entry.name}")
        bar.setMaximum(1000)
        self.table.setCellWidget(row, STATUS, bar)
        self.table.setCellWidget(row, len(COLUMNS) - 1, self._action(entry, row))

        def progress(p) -> None:
            bar.setValue(int(p.fraction * 1000))
            bar.setFormat(f"{p.fraction:.0%} · {p.speed_bps / 1e6:.1f} MB/s · {_eta(p.eta_s)} left")

        def finished(message: str) -> None:
            self.cancels.pop(entry.id, None)
            self.table.removeCellWidget(row, STATUS)
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


def _draft_tip(entry: CatalogEntry, entries: list[CatalogEntry]) -> str:
    """Which small model of the same vocabulary speeds this one up (Settings → Speed up replies)."""
    draft = suggested_draft(entry, entries)
    if draft is None:
        return ""
    state = "installed" if draft.installed else "not downloaded yet"
    return f"Faster replies: {draft.name} ({state}) can draft for it — Settings → Speed up replies."
