"""A turn of the conversation: one widget per message, streaming appended at the end.

While a reply streams, each chunk is inserted at the end of its own
document with a text cursor: no re-render of the reply or the conversation,
so the cost of a token stays flat however long the reply gets. When the
reply ends it is rendered once as Markdown (Qt's own renderer).

Signals (MessageWidget): copy_requested(str), regenerate(int), continue_(int),
edit(int), alternative(int, int), remember(int) — positions in the conversation.
"""

from __future__ import annotations

import re
from functools import lru_cache

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QImageReader,
    QPainter,
    QPalette,
    QPixmap,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.store.import_tree import shown_time
from app.ui.highlight import CodeHighlighter

CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


_MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML


def calm_headings(document: QTextDocument) -> None:
    """Headings in a reply shown bold at the text's own size. A base model writes code without a
    fence, and Markdown reads each of its "# comment" lines as a title: a Python answer came out as
    a page of screen-wide H1s. A real heading still stands out, by weight."""
    plain = QTextCharFormat()
    plain.setProperty(QTextFormat.Property.FontSizeAdjustment, 0)
    block = document.begin()
    while block.isValid():
        if block.blockFormat().headingLevel():
            cursor = QTextCursor(block)
            cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(plain)
        block = block.next()


class _Body(QTextBrowser):
    """A read-only text area exactly as tall as its text, so the pane scrolls, not each turn."""

    def __init__(self) -> None:
        super().__init__()
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.viewport().setAutoFillBackground(False)

    def _fit(self, size) -> None:
        height = int(size.height()) + 6
        if height != self.height():
            self.setFixedHeight(height)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())

    def sizeHint(self) -> QSize:
        return QSize(400, int(self.document().size().height()) + 6)


class MessageWidget(QFrame):
    copy_requested = Signal(str)
    regenerate = Signal(int)
    continue_ = Signal(int)
    edit = Signal(int)
    edited = Signal(int, str)  # position, the new text (Save pressed in the inline editor)
    alternative = Signal(int, int)
    tokens = Signal(int)  # show or hide the reply's token probabilities
    remember = Signal(int)  # pin this message in the chat's memory

    def __init__(self, role: str, position: int, speaker: str) -> None:
        super().__init__()
        self.role, self.position, self.text = role, position, ""
        self._parts: list[str] = []
        self.versions = (0, 1)  # (shown alternative, how many) — kept for redrawing the buttons
        self.has_probs = False
        self.extra: QWidget | None = None  # the token view, when shown
        self._last = True
        self.setObjectName("userTurn" if role == "user" else "assistantTurn")
        self.setAccessibleName(f"{speaker} message")
        # The bubble (colour, border, indent) comes from resources/styles/basechat.qss.
        layout = self.column = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 6)
        layout.addLayout(self._header_row(speaker))
        self.body = _Body()
        self.body.setAccessibleName(f"{speaker} text")
        layout.addWidget(self.body)
        self.action_bar = QWidget()  # icon actions: on hover, and always under the newest reply
        _keep_space_when_hidden(self.action_bar)
        self.action_row = QHBoxLayout(self.action_bar)
        self.action_row.setContentsMargins(0, 0, 0, 0)
        self.action_row.setSpacing(2)
        layout.addWidget(self.action_bar)
        self._hovered = self._editing = False
        self.highlighter: CodeHighlighter | None = None  # made for the first reply text with code

    def _header_row(self, speaker: str) -> QHBoxLayout:
        """Picture (a card's), name, the time on hover, and a note at the right ("writing…")."""
        self.avatar = QLabel()
        self.avatar.setAccessibleName(f"{speaker}'s picture")
        self.avatar.hide()
        self.header = QLabel(speaker)
        self.header.setObjectName("speaker")
        self.time = QLabel("")  # when it was written: shown on hover, as chat apps do
        self.time.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        _keep_space_when_hidden(self.time)
        self.time.hide()
        self.status = QLabel("")
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        row = QHBoxLayout()
        for widget in (self.avatar, self.header, self.time):
            row.addWidget(widget)
        row.addStretch()
        row.addWidget(self.status)
        return row

    # -- content ---------------------------------------------------------------

    def set_final(self, text: str, note: str = "") -> None:
        """Render once as Markdown (code blocks coloured); add the buttons that fit this turn."""
        self.text = text
        if self.role == "assistant":
            if "```" in text and self.highlighter is None:
                self.highlighter = CodeHighlighter(self.body.document(), self._dark())
            # No HTML: a reply or an imported greeting that holds tags shows them as text.
            self.body.document().setMarkdown(text or "*(no reply)*", _MARKDOWN)
            calm_headings(self.body.document())
        else:
            self.body.setPlainText(text)
        self.status.setText(note)

    def set_avatar(self, picture: QPixmap | None) -> None:
        self.avatar.setVisible(picture is not None)
        if picture is not None:
            self.avatar.setPixmap(picture)

    def set_time(self, created_at: float) -> None:
        self.time.setText(shown_time(created_at, "%H:%M · %d %b %Y"))

    # -- hover -----------------------------------------------------------------

    def enterEvent(self, event) -> None:
        self._hovered = True
        self._show_hover()
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:
        self._hovered = False
        self._show_hover()
        super().leaveEvent(event)

    def changeEvent(self, event) -> None:
        """Light to dark (or back): the icons are redrawn in the new text colour, code in the
        matching Pygments style."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            color = self.palette().color(QPalette.ColorRole.Text).name()
            for button in self.action_bar.findChildren(QToolButton):
                if button.text() in _GLYPHS:
                    button.setIcon(glyph_icon(_GLYPHS[button.text()], color))
            if self.highlighter is not None:
                self.highlighter.set_dark(self._dark())

    def _dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    def _show_hover(self) -> None:
        """Actions show under the newest reply, while editing, and on the turn under the mouse."""
        newest_reply = self.role == "assistant" and self._last
        self.action_bar.setVisible(self._hovered or self._editing or newest_reply)
        self.time.setVisible(self._hovered and bool(self.time.text()))

    def begin_stream(self, start: str = "") -> None:
        self._parts = [start] if start else []
        self.body.setPlainText(start)
        self.status.setText("reading the conversation…")  # the prompt is evaluated before any token
        self._cursor = QTextCursor(self.body.document())

    def append(self, chunk: str) -> None:
        """O(1) per token: insert at the end, never re-render."""
        if not self._parts:
            chunk = chunk.lstrip()
            if not chunk:
                return
        if len(self._parts) <= 1 and self.status.text() == "reading the conversation…":
            self.status.setText("writing…")
        self._parts.append(chunk)
        self._cursor.movePosition(QTextCursor.MoveOperation.End)
        self._cursor.insertText(chunk)

    @property
    def streamed_text(self) -> str:
        return "".join(self._parts)

    # -- actions ---------------------------------------------------------------

    def add_actions(
        self, alternative: int = 0, alternatives: int = 1, can_continue: bool = False, last: bool = True,
        has_probs: bool | None = None,
    ) -> None:  # fmt: skip
        """Every turn can be edited and every reply regenerated: either makes a new version (a
        branch), and the ‹ n/m › switcher moves between versions. Continue extends the newest reply."""
        self.versions = (alternative, alternatives)
        self._last = last
        self.has_probs = self.has_probs if has_probs is None else has_probs
        _clear(self.action_row)
        self._button("Copy", "Copy this message", lambda: self.copy_requested.emit(self.text))
        for number, code in enumerate(CODE_BLOCK.findall(self.text), 1):
            button = self._button(f"Copy code {number}", f"Copy code block {number}",
                                  lambda _=False, c=code: self.copy_requested.emit(c))  # fmt: skip
            button.setIcon(QIcon())  # code copies keep their words: "Copy code 2" says which
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._button("Remember", "Remember this: pin it in the chat's memory (Frame panel)",
                     lambda: self.remember.emit(self.position))  # fmt: skip
        if self.role == "user":
            self._button("Edit", "Edit and resend this message (the old version keeps its branch)",
                         lambda: self.edit.emit(self.position))  # fmt: skip
        else:
            self._button("Edit", "Write this reply yourself (kept as a new version)",
                         lambda: self.edit.emit(self.position))  # fmt: skip
        if self.role == "assistant":
            self._button("Regenerate", "Write another reply", lambda: self.regenerate.emit(self.position))
            if can_continue and last:
                self._button("Continue", "Continue this reply", lambda: self.continue_.emit(self.position))
            if self.has_probs:
                self._button("Tokens", "Show each token's probability; click one to branch there",
                             lambda: self.tokens.emit(self.position))  # fmt: skip
        if alternatives > 1:
            self._alternatives(alternative, alternatives)
        self.action_row.addStretch()
        self._show_hover()

    def toggle_extra(self, widget: QWidget | None) -> None:
        """Show ``widget`` (the token view) in place of the text, or the text again (None)."""
        if self.extra is not None:
            self.extra.deleteLater()
            self.extra = None
        if widget is not None:
            self.extra = widget
            self.column.insertWidget(2, widget)
        self.body.setVisible(widget is None)

    def start_edit(self) -> None:
        """Edit in place: the text becomes editable, with Save and Cancel under it."""
        self.editor = QPlainTextEdit(self.text)
        self.editor.setAccessibleName("Edit message")
        self.column.insertWidget(2, self.editor)
        self.editor.show()
        self.body.hide()
        _clear(self.action_row)
        label = "Save && resend" if self.role == "user" else "Save as new version"
        for text, name, slot in ((label, label.replace("&&", "and"), self._save_edit),
                                 ("Cancel", "Cancel editing", self._end_edit)):  # fmt: skip
            self._button(text, name, slot).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.action_row.addStretch()
        self._editing = True
        self._show_hover()
        self.editor.setFocus()

    def _save_edit(self) -> None:
        text = self.editor.toPlainText().strip()
        if text:
            self._end_edit()
            self.edited.emit(self.position, text)

    def _end_edit(self) -> None:
        self._editing = False
        self.editor.deleteLater()
        self.body.show()
        self.add_actions(*self.versions, can_continue=False, last=self._last)

    def _alternatives(self, current: int, count: int) -> None:
        back = self._button(
            "‹", "Previous version", lambda: self.alternative.emit(self.position, current - 1)
        )
        back.setEnabled(current > 0)
        label = QLabel(f"{current + 1}/{count}")
        label.setAccessibleName("Version")
        self.action_row.addWidget(label)
        ahead = self._button("›", "Next version", lambda: self.alternative.emit(self.position, current + 1))
        ahead.setEnabled(current < count - 1)

    def _button(self, text: str, name: str, slot) -> QToolButton:
        """An icon with a tooltip; its text (what tests and screen readers name it by) stays."""
        button = QToolButton()
        button.setText(text)
        button.setAccessibleName(name)
        button.setToolTip(name)
        button.setAutoRaise(True)
        button.setObjectName("turnAction")
        glyph = _GLYPHS.get(text)
        if glyph:
            button.setIcon(glyph_icon(glyph, self.palette().color(QPalette.ColorRole.Text).name()))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.clicked.connect(slot)
        self.action_row.addWidget(button)
        return button


_GLYPHS = {"Copy": "❐", "Remember": "⚑", "Edit": "✎", "Regenerate": "↻", "Continue": "»", "Tokens": "%"}


@lru_cache(maxsize=32)
def glyph_icon(glyph: str, color: str) -> QIcon:
    """An icon drawn from a symbol in the palette's text colour: crisp at any scale, follows light
    and dark, and needs no icon theme (a packaged app on Windows or macOS has none)."""
    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    font = painter.font()
    font.setPixelSize(46)
    painter.setFont(font)
    painter.setPen(QColor(color))
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, glyph)
    painter.end()
    return QIcon(pixmap)


AVATAR_SIZE = 28


@lru_cache(maxsize=16)
def avatar_picture(path: str) -> QPixmap | None:
    """A card's picture, small: None when the file is gone or is not an image Qt can read (the
    reader's allocation limit refuses a picture that would unpack to more than 256 MB)."""
    reader = QImageReader(path)
    image = reader.read()
    if image.isNull():
        return None
    size = AVATAR_SIZE * 2  # sharp on a high-density screen
    mode = Qt.TransformationMode.SmoothTransformation
    square = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatioByExpanding, mode)
    picture = QPixmap.fromImage(square.copy((square.width() - size) // 2, 0, size, size))
    picture.setDevicePixelRatio(2)
    return picture


def _keep_space_when_hidden(widget: QWidget) -> None:
    """Showing it on hover must not move the text under the mouse."""
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)


def _clear(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget():
            item.widget().deleteLater()


def copy_to_clipboard(text: str) -> None:
    QGuiApplication.clipboard().setText(text)
