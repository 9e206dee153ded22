"""Where the user types: Enter sends, Shift+Enter starts a new line, Esc stops a reply.

Signals: submitted(str), stop_requested().
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QWidget


class _Editor(QPlainTextEdit):
    enter = Signal()
    escape = Signal()

    def keyPressEvent(self, event) -> None:
        plain_enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if plain_enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.enter.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.escape.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    submitted = Signal(str)
    stop_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.editor = _Editor()
        self.editor.setPlaceholderText("Message the model — Enter sends, Shift+Enter for a new line")
        self.editor.setAccessibleName("Message")
        self.editor.setTabChangesFocus(True)
        self.editor.setFixedHeight(80)
        self.button = QPushButton("Send")
        self.button.setAccessibleName("Send")
        self.button.setMinimumHeight(40)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.button)
        self.button.clicked.connect(self._clicked)
        self.editor.enter.connect(self._send)
        self.editor.escape.connect(self.stop_requested)
        self.busy = False

    def set_busy(self, busy: bool) -> None:
        """While a reply streams the button is Stop and nothing can be sent."""
        self.busy = busy
        self.button.setText("Stop" if busy else "Send")
        self.button.setAccessibleName("Stop" if busy else "Send")

    def _clicked(self) -> None:
        if self.busy:
            self.stop_requested.emit()
        else:
            self._send()

    def _send(self) -> None:
        """Sent at once even while a reply streams: the window queues it, never glues it on."""
        text = self.editor.toPlainText().strip()
        if not text:
            return
        self.editor.clear()
        self.submitted.emit(text)
