"""The loom's widgets: alternatives streaming side by side, a reply's tokens tinted by probability
(click one to branch there), and the conversation as a tree.

They show what the store holds and say what the person chose through signals;
the main window does the storing and generating.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QCursor, QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QToolTip,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.store.chats import TreeNode


class AlternativesBox(QFrame):
    """N replies growing at once, stacked; when they end, "Use this" picks one.

    Signals: picked(int) — the alternative's index (0 = the one shown by default).
    """

    picked = Signal(int)

    def __init__(self, n: int, position: int) -> None:
        super().__init__()
        self.setObjectName("alternatives")
        self.position = position
        self.ids: list[int] = []  # the stored versions, once written (the window fills them in)
        self.texts: list[QPlainTextEdit] = []
        self.buttons: list[QPushButton] = []
        column = QVBoxLayout(self)
        self.heading = QLabel(f"Writing {n} alternatives…")
        column.addWidget(self.heading)
        for index in range(n):
            column.addWidget(self._row(index))

    def _row(self, index: int) -> QWidget:
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        text = QPlainTextEdit()
        text.setReadOnly(True)
        text.setMaximumHeight(110)
        text.setAccessibleName(f"Alternative {index + 1}")
        button = QPushButton("Use this")
        button.setAccessibleName(f"Use alternative {index + 1}")
        button.setEnabled(False)
        button.clicked.connect(lambda: self.picked.emit(index))
        line.addWidget(text, 1)
        line.addWidget(button)
        self.texts.append(text)
        self.buttons.append(button)
        return row

    def append(self, index: int, chunk: str) -> None:
        cursor = self.texts[index].textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(chunk)

    def finish(self) -> None:
        self.heading.setText("Pick the alternative to keep (the others stay as versions):")
        for button in self.buttons:
            button.setEnabled(True)


def tint(prob: float) -> str:
    """Background for a token: unlikely tokens warm, near-certain ones clear."""
    alpha = round(max(0.0, min(1.0, 1.0 - prob)) * 160)
    return f"rgba(255, 140, 0, {alpha})"


class TokenView(QTextBrowser):
    """A reply drawn token by token, each tinted by how likely the model found it. Hovering shows
    the candidates at that place; clicking offers them: choosing one branches the reply there.

    Signals: branch(int index, int token) — keep the reply up to ``index``, put ``token`` there."""

    branch = Signal(int, int)

    def __init__(self, rows: list) -> None:
        super().__init__()
        self.rows = rows
        self.setOpenLinks(False)
        self.setAccessibleName("Token probabilities")
        self.setHtml(self._html())
        self.anchorClicked.connect(self._clicked)
        self.highlighted.connect(self._hovered)
        self.setMinimumHeight(80)

    def _html(self) -> str:
        spans = []
        for index, (_token, text, prob, _top) in enumerate(self.rows):
            shown = html.escape(text).replace("\n", "↵<br>") or "·"
            spans.append(
                f'<a href="tok:{index}" style="color: palette(text); text-decoration: none;'
                f' background-color: {tint(prob)};">{shown}</a>'
            )
        return "<p style='line-height: 150%'>" + "".join(spans) + "</p>"

    def candidates_text(self, index: int) -> str:
        return "\n".join(f"{c[1]!r}  {c[2]:.1%}" for c in self.rows[index][3])

    def _hovered(self, url: QUrl) -> None:
        if url.scheme() == "tok":
            QToolTip.showText(QCursor.pos(), self.candidates_text(int(url.path())), self)

    def _clicked(self, url: QUrl) -> None:
        if url.scheme() == "tok":
            self.menu_for(int(url.path())).popup(QCursor.pos())

    def menu_for(self, index: int) -> QMenu:
        """The candidates at token ``index``, likeliest first; the one the reply has is checked."""
        menu = QMenu(self)
        chosen = self.rows[index][0]
        for token, text, prob, *_ in self.rows[index][3]:
            action = menu.addAction(f"{text!r}   {prob:.1%}")
            action.setCheckable(True)
            action.setChecked(token == chosen)
            action.triggered.connect(lambda _=False, t=token: self.branch.emit(index, t))
        return menu


class TreePanel(QTreeWidget):
    """The conversation as a tree: the shown path in bold. Click a message to go there;
    right-click to branch from it or delete its branch.

    Signals: go_to(int), branch_from(int), delete_branch(int) — message ids."""

    go_to = Signal(int)
    branch_from = Signal(int)
    delete_branch = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.setHeaderHidden(True)
        self.setAccessibleName("Conversation tree")
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemClicked.connect(lambda item, _col: self.go_to.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        self.items: dict[int, QTreeWidgetItem] = {}

    def show_tree(self, nodes: list[TreeNode]) -> None:
        self.clear()
        self.items = {}
        for node in nodes:
            parent = self.items.get(node.parent_id) if node.parent_id is not None else None
            item = QTreeWidgetItem([_label(node)])
            item.setData(0, Qt.ItemDataRole.UserRole, node.id)
            item.setToolTip(0, node.text)
            if node.on_path:
                font = QFont(item.font(0))
                font.setBold(True)
                item.setFont(0, font)
            (parent.addChild(item) if parent is not None else self.addTopLevelItem(item))
            self.items[node.id] = item
        self.expandAll()

    def _menu(self, where: QPoint) -> None:
        item = self.itemAt(where)
        if item is not None:
            self.menu_for(item.data(0, Qt.ItemDataRole.UserRole)).popup(self.viewport().mapToGlobal(where))

    def menu_for(self, message_id: int) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Branch from here", lambda: self.branch_from.emit(message_id))
        menu.addAction("Delete branch", lambda: self.delete_branch.emit(message_id))
        return menu


def _label(node: TreeNode) -> str:
    who = "You" if node.role == "user" else "AI"
    line = " ".join(node.text.split())
    return f"{who}: {line[:48]}{'…' if len(line) > 48 else ''}"
