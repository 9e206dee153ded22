"""The conversation list: newest first, with search, new, rename and delete.

Signals: selected(int), new_requested(), rename_requested(int), delete_requested(int),
export_requested(int).
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.store import ChatStore
from app.store.import_tree import in_calendar


class Sidebar(QWidget):
    selected = Signal(int)
    new_requested = Signal()
    rename_requested = Signal(int)
    delete_requested = Signal(int)
    export_requested = Signal(int)

    def __init__(self, store: ChatStore) -> None:
        super().__init__()
        self.store = store
        self.new_button = QPushButton("New chat")
        self.new_button.setAccessibleName("New chat")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats")
        self.search.setAccessibleName("Search chats")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setAccessibleName("Conversations")
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)  # a long title never scrolls sideways
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setWordWrap(False)
        self.empty = QLabel("")
        self.empty.setAccessibleName("Search result")
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.empty.hide()
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.new_button, self.search, self.empty, self.list):
            layout.addWidget(widget)
        self.new_button.clicked.connect(self.new_requested)
        self.search.textChanged.connect(lambda _text: self.refresh())
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self._quiet = False

    def refresh(self, select: int | None = None) -> None:
        query = self.search.text().strip()
        rows = self.store.list_conversations()
        if query:  # text matches first (full-text search), then title matches
            by_id = {c.id: c for c in rows}
            found = list(
                dict.fromkeys(cid for cid, _title, _text in self.store.search(query) if cid in by_id)
            )
            titled = [c.id for c in rows if query.lower() in c.title.lower() and c.id not in found]
            rows = [by_id[cid] for cid in found + titled]
        self._quiet = True
        self.list.clear()
        for conversation in rows:
            self.list.addItem(_item(conversation))
            if conversation.id == select:
                self.list.setCurrentItem(self.list.item(self.list.count() - 1))
        self._quiet = False
        self.empty.setText(f"No chats match “{query}”." if query and not rows else "")
        self.empty.setVisible(bool(query and not rows))

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _current_changed(self, item, _previous) -> None:
        if item is not None and not self._quiet:
            self.selected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _menu(self, point) -> None:
        item = self.list.itemAt(point)
        if item is None:
            return
        cid = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename_requested.emit(cid))
        menu.addAction("Export…", lambda: self.export_requested.emit(cid))
        menu.addAction("Delete…", lambda: self.delete_requested.emit(cid))
        menu.exec(self.list.mapToGlobal(point))


def _item(conversation) -> QListWidgetItem:
    """Title and when it was last used; the full title as a tooltip (the list elides it)."""
    item = QListWidgetItem(f"{conversation.title}\n{_when(conversation.updated_at)}")
    item.setToolTip(conversation.title)
    item.setData(Qt.ItemDataRole.UserRole, conversation.id)
    return item


def _when(timestamp: float) -> str:
    """Today's chats by time, this year's by day, older ones with the year."""
    if not in_calendar(timestamp):
        return "unknown time"
    moment = time.localtime(timestamp)
    now = time.localtime()
    if moment[:3] == now[:3]:
        return time.strftime("Today %H:%M", moment)
    if moment.tm_year == now.tm_year:
        return time.strftime("%d %b", moment).lstrip("0")
    return time.strftime("%d %b %Y", moment).lstrip("0")
