"""The Frame panel's Lorebook tab: the entries (list, add, edit, switch on and off, remove), the
book's scan depth, budget and placement, an import of World Info files, and a box to test a message
and see which entries it fires and why.

Edits stay in the panel until the frame panel's "Apply to this chat"; ``book()`` gives them.
Signal: import_requested(str path).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.scaffold.lorebook import LOGICS, POSITIONS, Lorebook, LoreEntry, entry_summary, scan

_LOGIC_NAMES = {"and_any": "AND ANY", "not_all": "NOT ALL", "not_any": "NOT ANY", "and_all": "AND ALL"}
_PLACE_NAMES = {"before_char": "Before the description", "after_char": "After the description",
                "at_depth": "At a depth in the chat"}  # fmt: skip


class LorebookPanel(QWidget):
    import_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[LoreEntry] = []
        self._loading = False
        self._book_fields()
        self._entry_fields()
        self._build()
        self._connect()
        self.show_book(None)

    def _book_fields(self) -> None:
        self.entry_list = QListWidget()
        self.entry_list.setAccessibleName("Lorebook entries")
        self.entry_list.setMaximumHeight(110)
        self.add_button, self.remove_button = QPushButton("Add entry"), QPushButton("Remove")
        self.import_button = QPushButton("Import World Info…")
        self.import_button.setToolTip(
            "A SillyTavern World Info file, a card with a lorebook, or Kobold world info"
        )
        self.scan_depth = _spin(0, 100, "Messages searched for keys (the newest ones)")
        self.budget = _spin(0, 100_000, "Tokens the fired entries may take together")
        self.keep_cache = QCheckBox("Fired entries go under the newest message")
        self.keep_cache.setToolTip(
            "Keeps replies fast. An entry placed in the frame changes the prompt's start, so the whole "
            "chat is read again "
            "on every turn it fires. Constant entries always stay where they are written."
        )

    def _entry_fields(self) -> None:
        self.name = QLineEdit()
        self.keys = QLineEdit()
        self.keys.setToolTip("Comma-separated; /pattern/i is a regular expression")
        self.secondary = QLineEdit()
        self.logic = _combo(_LOGIC_NAMES)
        self.content = QPlainTextEdit()
        self.content.setAccessibleName("Entry text")
        self.content.setMaximumHeight(90)
        self.constant = QCheckBox("Always in (constant)")
        self.case_sensitive, self.whole_words = QCheckBox("Match case"), QCheckBox("Whole words")
        self.position = _combo(_PLACE_NAMES)
        self.entry_depth = _spin(0, 1000, "Messages from the end: 0 is just before the reply")
        self.order = _spin(-(10**6), 10**6, "Lower comes first")
        self.priority = _spin(-(10**6), 10**6, "Kept first when the budget is short")
        self.test_message = QLineEdit()
        self.test_message.setPlaceholderText("Type a message to see which entries it fires")
        self.test_message.setAccessibleName("Test a message")
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self.test_result.setAccessibleName("Entries fired")

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        settings = QFormLayout()
        settings.addRow("Scan depth", self.scan_depth)
        settings.addRow("Token budget", self.budget)
        settings.addRow(self.keep_cache)
        layout.addLayout(settings)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.import_button):
            buttons.addWidget(button)
        layout.addWidget(self.entry_list)
        layout.addLayout(buttons)
        layout.addLayout(self._entry_form())
        layout.addWidget(self.test_message)
        layout.addWidget(self.test_result)

    def _entry_form(self) -> QFormLayout:
        form = QFormLayout()
        rows: list[tuple[str, QWidget]] = [
                ("Label", self.name), ("Keys", self.keys), ("Secondary keys", self.secondary),
                ("Secondary logic", self.logic), ("Text", self.content), ("Place", self.position),
                ("Depth", self.entry_depth), ("Order", self.order), ("Priority", self.priority)]  # fmt: skip
        for label, widget in rows:
            form.addRow(label, widget)
        checks = QHBoxLayout()
        for box in (self.constant, self.case_sensitive, self.whole_words):
            checks.addWidget(box)
        form.addRow(checks)
        return form

    def _connect(self) -> None:
        self.entry_list.currentRowChanged.connect(self._show_entry)
        self.entry_list.itemChanged.connect(self._switched)
        self.add_button.clicked.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.import_button.clicked.connect(self._choose_file)
        for line in (self.name, self.keys, self.secondary, self.test_message):
            line.textChanged.connect(self._edited)
        self.content.textChanged.connect(self._edited)
        for box in (self.constant, self.case_sensitive, self.whole_words, self.keep_cache):
            box.toggled.connect(self._edited)
        for combo in (self.logic, self.position):
            combo.currentIndexChanged.connect(self._edited)
        for spin in (self.entry_depth, self.order, self.priority, self.scan_depth, self.budget):
            spin.valueChanged.connect(self._edited)

    # -- showing ----------------------------------------------------------------------------------

    def show_book(self, book: Lorebook | None) -> None:
        self._base = book or Lorebook()
        self.entries = list(self._base.entries)
        self._loading = True
        self.scan_depth.setValue(self._base.scan_depth)
        self.budget.setValue(self._base.token_budget)
        self.keep_cache.setChecked(self._base.keep_cache)
        self._loading = False
        self._fill_list(0 if self.entries else -1)

    def _fill_list(self, row: int) -> None:
        self._loading = True
        self.entry_list.clear()
        for entry in self.entries:
            item = QListWidgetItem(entry_summary(entry))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if entry.enabled else Qt.CheckState.Unchecked)
            self.entry_list.addItem(item)
        self._loading = False
        self.entry_list.setCurrentRow(row)
        self._show_entry(row)

    def _show_entry(self, row: int) -> None:
        entry = self.entries[row] if 0 <= row < len(self.entries) else None
        self._loading = True
        shown = entry or LoreEntry("")
        self.name.setText(shown.name)
        self.keys.setText(", ".join(shown.keys))
        self.secondary.setText(", ".join(shown.secondary_keys))
        self.logic.setCurrentIndex(LOGICS.index(shown.logic))
        self.content.setPlainText(shown.content)
        self.position.setCurrentIndex(POSITIONS.index(shown.position))
        for spin, value in (
            (self.entry_depth, shown.depth),
            (self.order, shown.order),
            (self.priority, shown.priority),
        ):
            spin.setValue(value)
        for box, on in ((self.constant, shown.constant), (self.case_sensitive, shown.case_sensitive),
                        (self.whole_words, shown.whole_words)):  # fmt: skip
            box.setChecked(on)
        self._loading = False
        self._set_entry_enabled(entry is not None)
        self._test()

    def _set_entry_enabled(self, enabled: bool) -> None:
        for widget in (self.name, self.keys, self.secondary, self.logic, self.content, self.position,
                       self.entry_depth, self.order, self.priority, self.constant, self.case_sensitive,
                       self.whole_words, self.remove_button):  # fmt: skip
            widget.setEnabled(enabled)

    # -- editing ----------------------------------------------------------------------------------

    def _edited(self, *_args) -> None:
        if self._loading:
            return
        row = self.entry_list.currentRow()
        if 0 <= row < len(self.entries):
            self.entries[row] = self._entry_from_fields(self.entries[row])
            self._loading = True
            self.entry_list.item(row).setText(entry_summary(self.entries[row]))
            self._loading = False
        self._test()

    def _entry_from_fields(self, entry: LoreEntry) -> LoreEntry:
        return replace(
            entry, name=self.name.text().strip(), keys=_split(self.keys.text()),
            secondary_keys=_split(self.secondary.text()), logic=LOGICS[self.logic.currentIndex()],
            content=self.content.toPlainText().strip(), constant=self.constant.isChecked(),
            case_sensitive=self.case_sensitive.isChecked(), whole_words=self.whole_words.isChecked(),
            position=POSITIONS[self.position.currentIndex()], depth=self.entry_depth.value(),
            order=self.order.value(), priority=self.priority.value(),
        )  # fmt: skip

    def _switched(self, item: QListWidgetItem) -> None:
        row = self.entry_list.row(item)
        if self._loading or not 0 <= row < len(self.entries):
            return
        enabled = item.checkState() == Qt.CheckState.Checked
        self.entries[row] = replace(self.entries[row], enabled=enabled)
        self._test()

    def _add(self) -> None:
        self.entries.append(LoreEntry("", keys=(), name=f"Entry {len(self.entries) + 1}"))
        self._fill_list(len(self.entries) - 1)
        self.keys.setFocus()

    def _remove(self) -> None:
        row = self.entry_list.currentRow()
        if 0 <= row < len(self.entries):
            del self.entries[row]
            self._fill_list(min(row, len(self.entries) - 1))

    def _choose_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import a lorebook", "", "Lorebooks (*.json *.png)")
        if path:
            self.import_requested.emit(path)

    def book(self) -> Lorebook | None:
        """The lorebook as edited (None when it has no entry with text)."""
        entries = tuple(e for e in self.entries if e.content.strip())
        if not entries:
            return None
        return replace(self._base, entries=entries, scan_depth=self.scan_depth.value(),
                       token_budget=self.budget.value(), keep_cache=self.keep_cache.isChecked())  # fmt: skip

    def _test(self) -> None:
        """Which entries the test message fires, and why."""
        text = self.test_message.text().strip()
        book = self.book()
        if not text or book is None:
            self.test_result.setText("")
            return
        fired = scan(book, [text]).fired
        lines = [f"{f.entry.name or ', '.join(f.entry.keys)}: {f.reason}" for f in fired]
        self.test_result.setText("Fires: " + "; ".join(lines) if lines else "Nothing fires.")


def _spin(low: int, high: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setToolTip(tip)
    return spin


def _combo(names: dict[str, str]) -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(names.values()))
    return combo


def _split(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())
