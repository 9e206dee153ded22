"""Notebook mode: a document the model continues — free text, no transcript, the way base models
were made to be used.

Continue (Ctrl+Enter) sends the text up to the cursor, as it is, and the model's
continuation is written after it. Each continuation is stored like a chat turn: a
"user" message holding the document up to the cursor and a reply holding what the
model wrote, hanging from the previous continuation, so the conversation tree,
alternatives (‹ n/m ›) and the token view work here as in a chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.ui.loom import TokenView
from app.ui.worker import ReplyRequest

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class NotebookPage(QWidget):
    """The document and its buttons."""

    def __init__(self) -> None:
        super().__init__()
        column = QVBoxLayout(self)
        self.editor = QPlainTextEdit()
        self.editor.setAccessibleName("Notebook")
        self.editor.setPlaceholderText(
            "Write the beginning of a text; Continue (Ctrl+Enter) lets the model go on."
        )
        column.addWidget(self.editor, 1)
        row = QHBoxLayout()
        self.continue_button = self._button(row, "Continue", "Continue the text from the cursor (Ctrl+Enter)")
        self.alternatives_button = self._button(row, "Alternatives", "Write several continuations at once")
        self.back = self._button(row, "‹", "Previous version of the last continuation")
        self.version = QLabel("")
        row.addWidget(self.version)
        self.ahead = self._button(row, "›", "Next version of the last continuation")
        tip = "Each token of the last continuation, by probability"
        self.tokens_button = self._button(row, "Tokens", tip)
        self.stop_button = self._button(row, "Stop", "Stop writing")
        row.addStretch()
        self.status = QLabel("")
        row.addWidget(self.status)
        column.addLayout(row)
        self.token_view: TokenView | None = None
        self.column = column

    @staticmethod
    def _button(row: QHBoxLayout, text: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setAccessibleName(tip)
        button.setToolTip(tip)
        row.addWidget(button)
        return button


class Notebook(QObject):
    """The notebook's side of the main window: its page, its requests, its stored continuations."""

    def __init__(self, window: MainWindow) -> None:
        # A QObject living on the GUI thread: the worker's signals reach it queued, never
        # on the engine's thread (a plain Python receiver would be called directly there).
        super().__init__(window)
        self.w = window
        self.page = NotebookPage()
        self.request_id = 0
        page = self.page
        page.continue_button.clicked.connect(lambda: self.continue_text(1))
        several = lambda: self.continue_text(max(2, window.loom.alternatives_per_reply()))  # noqa: E731
        page.alternatives_button.clicked.connect(several)
        page.back.clicked.connect(lambda: self.switch_version(-1))
        page.ahead.clicked.connect(lambda: self.switch_version(+1))
        page.tokens_button.clicked.connect(self.toggle_tokens)
        page.stop_button.clicked.connect(window.worker.stop)
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), page.editor)
        shortcut.activated.connect(lambda: self.continue_text(1))
        window.worker.token.connect(self._token)
        window.worker.alternative_token.connect(self._alternative_token)
        window.worker.reply_done.connect(self._done)
        window.worker.reply_failed.connect(self._failed)

    # -- showing ---------------------------------------------------------------------------

    def new(self) -> int:
        model = self.w.model_info.get("id", "")
        return self.w.service.start(self.w.template, self.w.replies.params(), model, kind="notebook")

    def show(self, conversation_id: int) -> None:
        """The document as stored: the last continued text and the continuation chosen after it."""
        thread = self.w.store.get(conversation_id).messages
        last_continued = max((i for i, m in enumerate(thread) if m.role == "user"), default=len(thread))
        self.page.editor.setPlainText("".join(m.text for m in thread[last_continued:]))
        self.page.editor.moveCursor(QTextCursor.MoveOperation.End)
        self._show_versions(thread)
        self._drop_tokens()

    def _show_versions(self, thread: list) -> None:
        last = thread[-1] if thread and thread[-1].role == "assistant" else None
        current, count = (last.alternative, last.alternatives) if last else (0, 1)
        self.page.version.setText(f"{current + 1}/{count}" if count > 1 else "")
        self.page.back.setEnabled(count > 1 and current > 0)
        self.page.ahead.setEnabled(count > 1 and current < count - 1)
        self.page.tokens_button.setEnabled(bool(last and last.has_probs))

    # -- continuing ------------------------------------------------------------------------

    def continue_text(self, n: int, sibling: bool = False) -> None:
        """Send the document up to the cursor; the model's text goes after it (the rest is kept
        on the old branch). ``sibling``: the text is another version of the last one continued."""
        w, cid = self.w, self.w.conversation_id
        cursor = self.page.editor.textCursor()
        prefix = self.page.editor.toPlainText()[: max(cursor.position(), cursor.anchor())]
        if self.request_id or not w.replies.can_act() or cid is None or not prefix.strip():
            return
        self._store_continued(cid, prefix, sibling)
        self.page.editor.setPlainText(prefix)
        self.page.editor.setReadOnly(True)
        self.page.status.setText("writing…" if n == 1 else f"writing {n} alternatives (showing the first)…")
        self.request_id = w.replies.next_request_id()
        request = ReplyRequest(self.request_id, cid, [], w.template, w.replies.params(),
                               mode="notebook", user_text=prefix, n=n)  # fmt: skip
        w.request_generate.emit(request)
        w.sidebar.refresh(select=w.conversation_id)

    def _store_continued(self, conversation_id: int, prefix: str, sibling: bool) -> None:
        """The text continued is a new user turn, or another version of the last one."""
        thread = self.w.store.get(conversation_id).messages
        if sibling and len(thread) >= 2:
            self.w.service.edit_user(conversation_id, thread[-2].position, prefix)
        else:
            self.w.service.add_user(conversation_id, prefix)

    def _token(self, request_id: int, chunk: str) -> None:
        if request_id == self.request_id:
            self._append(chunk)

    def _alternative_token(self, request_id: int, index: int, chunk: str) -> None:
        if request_id == self.request_id and index == 0:
            self._append(chunk)

    def _append(self, chunk: str) -> None:
        cursor = self.page.editor.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(chunk)

    def _done(self, request_id: int, outcome) -> None:
        if request_id == self.request_id:
            self.w.replies.show_speed(outcome.usage, outcome.together)
            self._end("")

    def _failed(self, request_id: int, message: str) -> None:
        if request_id == self.request_id:
            self._end(message)

    def _end(self, message: str) -> None:
        self.request_id = 0
        self.page.editor.setReadOnly(False)
        self.page.status.setText(message)
        if self.w.conversation_id is not None:
            self.show(self.w.conversation_id)
            self.w.loom.refresh_tree()

    # -- versions and tokens -----------------------------------------------------------------

    def _thread(self) -> list:
        """The shown path of the open notebook (none when no conversation is open)."""
        w = self.w
        return w.store.get(w.conversation_id).messages if w.conversation_id is not None else []

    def switch_version(self, step: int) -> None:
        thread = self._thread()
        if self.request_id or not thread or thread[-1].role != "assistant":
            return
        last, conversation_id = thread[-1], self.w.conversation_id
        assert conversation_id is not None
        self.w.service.choose_version(conversation_id, last.position, last.alternative + step)
        self.show(conversation_id)
        self.w.loom.refresh_tree()

    def toggle_tokens(self) -> None:
        if self._drop_tokens():
            return
        w = self.w
        thread = self._thread()
        if not thread or thread[-1].role != "assistant":
            return
        view = TokenView(w.store.token_probs(thread[-1].id) or [])
        view.branch.connect(self.branch_at)
        self.page.token_view = view
        self.page.column.insertWidget(1, view)

    def _drop_tokens(self) -> bool:
        if self.page.token_view is None:
            return False
        self.page.token_view.deleteLater()
        self.page.token_view = None
        return True

    def branch_at(self, index: int, token: int) -> None:
        """The text up to that token, the chosen candidate in its place, then continue."""
        w = self.w
        thread = self._thread()
        rows = w.store.token_probs(thread[-1].id) or []
        chosen = next((c for c in rows[index][3] if c[0] == token), None)
        if chosen is None:
            return
        text = thread[-2].text + "".join(r[1] for r in rows[:index]) + chosen[1]
        self._drop_tokens()
        self.page.editor.setPlainText(text)
        self.page.editor.moveCursor(QTextCursor.MoveOperation.End)
        self.continue_text(1, sibling=True)
