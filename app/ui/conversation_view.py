"""The conversation pane: the turns drawn (the newest page of a chat, earlier pages on request),
the jump to the latest one, and the greeting above them."""

from __future__ import annotations

import bisect

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QToolButton, QVBoxLayout, QWidget

from app.ui.messages import MessageWidget

READABLE_WIDTH = 860  # pixels of the chat column: about 90 characters a line, as chat apps keep


class ConversationView(QScrollArea):
    """The turns drawn: the newest page of the shown path, and earlier pages when asked for. Holds
    no data of its own beyond what it shows."""

    earlier_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self.column = QVBoxLayout(inner)
        self.column.setSpacing(8)
        self.first_shown = 0  # the path's position of the earliest turn drawn
        # While earlier turns are put above: the turn that was first, and its offset on screen.
        self._anchor: tuple[MessageWidget, int] | None = None
        self.earlier = self._centred_button("Show earlier messages")  # a long chat opens at its newest page
        self.earlier.clicked.connect(self.earlier_requested)
        self.hint = _empty_hint()
        self.column.addWidget(self.hint)
        self.recommend = self._centred_button("Recommended model")  # "For better answers, download …"
        self.column.addStretch()
        self.setWidget(inner)
        self.turns: list[MessageWidget] = []
        self.greeting: MessageWidget | None = None
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._follow)
        bar.actionTriggered.connect(self._scrolled)
        bar.valueChanged.connect(self._offer_latest)
        self._stick = True
        self._fetching = False  # a page of earlier turns is asked for and not drawn yet
        self.latest = self._latest_button()

    def _centred_button(self, name: str) -> QPushButton:
        """A hidden button in the column, its text set when it is shown."""
        button = QPushButton("")
        button.setAccessibleName(name)
        button.hide()
        self.column.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        return button

    def _latest_button(self) -> QToolButton:
        """Floats over the bottom right once the person scrolled up."""
        latest = QToolButton(self)
        latest.setText("↓ Latest")
        latest.setAccessibleName("Jump to the latest message")
        latest.setToolTip("Jump to the latest message (new text scrolls into view again)")
        latest.setObjectName("jumpToLatest")
        latest.clicked.connect(self.jump_to_latest)
        latest.hide()
        return latest

    def jump_to_latest(self) -> None:
        bar = self.verticalScrollBar()
        self._anchor = None
        bar.setValue(bar.maximum())
        self._stick = True

    def _offer_latest(self) -> None:
        """Scrolled up more than half a screen: following new text stops, and the button offers it."""
        bar = self.verticalScrollBar()
        self.latest.setVisible(bar.maximum() - bar.value() > self.viewport().height() // 2)
        self.latest.raise_()

    def resizeEvent(self, event) -> None:
        """A readable line length: on a wide window the turns keep to a centred column."""
        super().resizeEvent(event)
        side = max(8, (self.viewport().width() - READABLE_WIDTH) // 2)
        self.column.setContentsMargins(side, 8, side, 8)
        size, port = self.latest.sizeHint(), self.viewport().geometry()
        self.latest.move(port.right() - size.width() - 16, port.bottom() - size.height() - 12)

    def clear(self) -> None:
        self._anchor = None
        for turn in self.turns:
            turn.deleteLater()
        self.turns = []
        self.set_first_shown(0)
        self.show_greeting("", "")
        self.hint.show()
        self.recommend.setVisible(bool(self.recommend.text()))

    def show_greeting(self, speaker: str, text: str, picture: QPixmap | None = None) -> None:
        """The frame's opening message (a character's greeting): shown first, not a stored turn."""
        if self.greeting is not None:
            self.greeting.deleteLater()
            self.greeting = None
        if text:
            self.greeting = MessageWidget("assistant", -1, speaker)
            self.greeting.set_final(text, "greeting")
            self.greeting.set_avatar(picture)
            self.column.insertWidget(2, self.greeting)
            self.greeting.setVisible(self.first_shown == 0)
            self.hint.hide()

    def set_first_shown(self, position: int) -> None:
        """Turns before ``position`` are not drawn: the button at the top offers them."""
        self.first_shown = position
        self.earlier.setText(f"Show earlier messages ({position:,} more)")
        self.earlier.setVisible(position > 0)
        if self.greeting is not None:
            self.greeting.setVisible(position == 0)

    def keep_place(self) -> None:
        """Turns are about to be put above the visible ones: the turn that is first now keeps its
        place on screen through every layout that follows, until the person scrolls again."""
        if self.turns:
            first = self.turns[0]
            self._anchor = (first, first.y() - self.verticalScrollBar().value())

    def add_turn(self, role: str, position: int, speaker: str) -> MessageWidget:
        """A turn in position order: after the others as a chat grows, above them for an earlier page."""
        turn = MessageWidget(role, position, speaker)
        self.hint.hide()
        self.recommend.hide()
        index = bisect.bisect([t.position for t in self.turns], position)
        at = self.column.indexOf(self.turns[index]) if index < len(self.turns) else self.column.count() - 1
        self.column.insertWidget(at, turn)
        self.turns.insert(index, turn)
        if index == len(self.turns) - 1:  # a new turn at the end: follow it again
            self._stick, self._anchor = True, None
        return turn

    def add_box(self, widget: QWidget) -> None:
        """A widget under the turns (the alternatives being written)."""
        self.column.insertWidget(self.column.count() - 1, widget)
        self._stick = True

    def remove_from(self, position: int) -> None:
        self._anchor = None
        keep = [t for t in self.turns if t.position < position]
        for turn in self.turns[len(keep) :]:
            turn.deleteLater()
        self.turns = keep
        self.hint.setVisible(not keep and self.greeting is None)

    def _scrolled(self, _action: int) -> None:
        """Scrolling to the top of a chat opened at its newest page fetches the page before it:
        one page however many wheel steps arrive before it is drawn."""
        bar = self.verticalScrollBar()
        self._anchor = None  # the person moves the view now
        if self.first_shown > 0 and bar.sliderPosition() <= bar.minimum() and not self._fetching:
            self._fetching = True
            QTimer.singleShot(0, self._fetch_earlier)

    def _fetch_earlier(self) -> None:
        self._fetching = False
        self.earlier_requested.emit()

    def _follow(self, _low: int, high: int) -> None:
        """Keep the newest text in view while it streams, unless the user scrolled up; keep the
        place when a page of earlier turns was put above."""
        bar = self.verticalScrollBar()
        if self._anchor is not None:
            turn, offset = self._anchor
            bar.setValue(turn.y() - offset)
            return
        if self._stick or bar.value() >= bar.maximum() - 80:
            QTimer.singleShot(0, lambda: bar.setValue(bar.maximum()))
            self._stick = False


def _empty_hint() -> QLabel:
    hint = QLabel(
        "<h3>Chat with a base model, offline</h3>"
        "<p>Type a message below. Basechat wraps it in a conversation transcript so the model "
        "answers like a chat partner.<br>The <b>Frame</b> button shows exactly what the model reads.</p>"
    )
    hint.setObjectName("emptyHint")
    hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
    hint.setWordWrap(True)
    hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return hint
