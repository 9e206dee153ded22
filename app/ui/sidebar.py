"""The conversation list: newest first, with search, new, rename and delete.

Signals: selected(int), new_requested(), rename_requested(int), delete_requested(int).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.store import ChatStore


class Sidebar(QWidget):
    selected = Signal(int)
    new_requested = Signal()
    rename_requested = Signal(int)
    delete_requested = Signal(int)

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
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.new_button, self.search, self.list):
            layout.addWidget(widget)
        self.new_button.clicked.connect(self.new_requested)
        self.search.textChanged.connect(lambda _text: self.refresh())
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self._quiet = False

    def refresh(self, select: int | None = None) -> None:
        query = self.search.text().strip()
        if query:
            seen, rows = set(), []
            for cid, title, _text in self.store.search(query):
                if cid not in seen:
                    seen.add(cid)
                    rows.append((cid, title))
            rows += [(c.id, c.title) for c in self.store.list_conversations()
                     if query.lower() in c.title.lower() and c.id not in seen]  # fmt: skip
        else:
            rows = [(c.id, c.title) for c in self.store.list_conversations()]
        self._quiet = True
        self.list.clear()
        for cid, title in rows:
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, cid)
            self.list.addItem(item)
            if cid == select:
                self.list.setCurrentItem(item)
        self._quiet = False

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
        menu.addAction("Delete", lambda: self.delete_requested.emit(cid))
        menu.exec(self.list.mapToGlobal(point))
