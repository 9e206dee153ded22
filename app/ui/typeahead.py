"""Type-ahead: the prompt is evaluated while the person types, so Send has little left to do.

After a short pause in typing, the worker evaluates the prompt the composer's text would send —
the chat, ``User:`` and the words so far — into the model's cache, in small batches. Every
keystroke (and Send, which empties the composer) makes that work stale: it stops between
batches, and the send reuses whatever prefix it shares. Nothing is asked while a reply is
written; the tokens sent are always those of the prompt as evaluated at Send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from app.service import as_messages

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

PAUSE_MS = 300  # a pause this long in typing starts the evaluation


class TypeAhead(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.timer = QTimer(self, singleShot=True, interval=PAUSE_MS)
        self.timer.timeout.connect(self.ask)
        window.composer.editor.textChanged.connect(self.typed)
        window.worker.reply_done.connect(self.after_reply)

    def typed(self) -> None:
        """A keystroke: what is being evaluated is stale; start again after the next pause."""
        self.w.worker.keystrokes += 1
        self.timer.start()

    def after_reply(self, *_outcome) -> None:
        """Text typed while a reply was written is evaluated once the reply is done."""
        if self.w.composer.editor.toPlainText().strip():
            self.timer.start()

    def ask(self) -> None:
        w = self.w
        text = w.composer.editor.toPlainText()
        if (
            not text.strip()
            or not w.model_info
            or w.replies.streaming is not None
            or w.conversation_id is None
        ):
            return
        tail = w.replies.tail()
        where = (w.conversation_id, tail.start)
        w.request_prefill.emit(
            w.worker.keystrokes, w.template, as_messages(tail.messages), text, w.replies.params(), where
        )
