"""Conversation actions for the window: new chat or notebook, open, reopen the last one,
rename, delete, export. What a turn shows is the reply controller's; this module only decides
which conversation is on screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

_EXPORT_KINDS = (
    "Markdown (*.md);;JSON, restorable (*.json);;SillyTavern chat log (*.jsonl);;Prompt text (*.txt)"
)
_IMPORT_KINDS = "Chat histories (*.json *.jsonl);;All files (*)"


class ConversationActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        sidebar = window.sidebar
        sidebar.selected.connect(self.open)
        sidebar.new_requested.connect(self.new_chat)
        sidebar.rename_requested.connect(self.rename)
        sidebar.delete_requested.connect(self.delete)
        sidebar.export_requested.connect(self.export)

    def show_empty(self) -> None:
        self.w.loom.drop_box()  # a panel of one chat's alternatives never stays for the next
        self.w.view.clear()
        self.w.conversation_id = None
        self.show_greeting()
        self.w.groups.follow_frame()

    def show_greeting(self) -> None:
        template = self.w.template
        self.w.view.show_greeting(
            template.assistant_name, template.greeting, self.w.replies.character_picture()
        )

    def new_chat(self) -> None:
        w = self.w
        w.replies.abandon()
        w.pages.setCurrentWidget(w.chat_page)
        self.show_empty()
        w.settings.remove("last_conversation")
        w.sidebar.list.clearSelection()
        w.composer.editor.setFocus()
        w.frames.inspect_prompt()

    def new_notebook(self) -> None:
        """A document the model continues: no transcript, the same tree and alternatives."""
        self.w.replies.abandon()
        self.open(self.w.notebook.new())
        self.w.sidebar.refresh(select=self.w.conversation_id)
        self.w.notebook.page.editor.setFocus()

    def open(self, conversation_id: int) -> None:
        w = self.w
        w.replies.abandon()
        opened = w.service.open(conversation_id, with_history=False)
        w.conversation_id = conversation_id
        w.settings.setValue("last_conversation", conversation_id)
        if opened.conversation.kind == "notebook":
            self._open_notebook(conversation_id)
            return
        w.pages.setCurrentWidget(w.chat_page)
        w.template = opened.template
        w.frame.show_template(w.template)
        w.groups.follow_frame()
        w.view.clear()
        self.show_greeting()
        w.loom.drop_box()
        w.replies.show_newest()
        w.loom.refresh_tree()
        w.request_memory.emit(conversation_id, w.template)  # built while the person reads and types
        w.frames.inspect_prompt()

    def _open_notebook(self, conversation_id: int) -> None:
        self.w.loom.drop_box()
        self.w.view.clear()
        self.w.pages.setCurrentWidget(self.w.notebook.page)
        self.w.notebook.show(conversation_id)
        self.w.loom.refresh_tree()

    def reopen_last(self) -> None:
        """The chat that was open when Basechat closed opens again."""
        last = self.w.settings.value("last_conversation")
        known = {c.id for c in self.w.store.list_conversations()}
        if last is not None and int(str(last)) in known:
            self.open(int(str(last)))
            self.w.sidebar.refresh(select=self.w.conversation_id)

    def rename(self, conversation_id: int) -> None:
        w = self.w
        title, ok = QInputDialog.getText(w, "Rename chat", "Title:", text=w.store.get(conversation_id).title)
        if ok and title.strip():
            w.store.rename(conversation_id, title)
            w.sidebar.refresh(select=w.conversation_id)

    def delete(self, conversation_id: int) -> None:
        w = self.w
        if w.replies.busy and conversation_id == w.conversation_id:
            return
        title = w.store.get(conversation_id).title
        answer = QMessageBox.question(w, "Delete chat", f"Delete “{title}”? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        w.store.delete(conversation_id)
        if conversation_id == w.conversation_id:
            self.new_chat()  # nothing of the deleted chat stays on screen
            w.models.show_usage(0, "")
        w.sidebar.refresh(select=w.conversation_id)
        w.statusBar().showMessage(f"Deleted “{title}”.", 5000)

    def export(self, conversation_id: int | None = None) -> None:
        """Markdown, JSON (restorable) or the exact prompt, to a file the person picks."""
        from pathlib import Path

        from app.paths import write_atomically

        conversation_id = conversation_id or self.w.conversation_id
        if conversation_id is None:
            return
        title = self.w.store.get(conversation_id).title
        path, kind = QFileDialog.getSaveFileName(self.w, "Export chat", f"{title[:40]}.md", _EXPORT_KINDS)
        if not path:
            return
        try:
            write_atomically(Path(path), self._exported(conversation_id, kind))
        except OSError as exc:
            self.w.statusBar().showMessage(f"Cannot write {path}: {exc.strerror or exc}", 10000)
            return
        self.w.statusBar().showMessage(f"Exported to {path}", 6000)

    def _exported(self, conversation_id: int, kind: str) -> str:
        import json

        from app.store import export

        store = self.w.store
        if kind.startswith("JSON"):
            return json.dumps(export.to_json(store, [conversation_id]), ensure_ascii=False, indent=1)
        if kind.startswith("Prompt"):
            return export.to_prompt(store.get(conversation_id))
        if kind.startswith("SillyTavern"):
            from app.store.sillytavern import to_chat_log

            return to_chat_log(store, conversation_id)
        return export.markdown_of(store, conversation_id)

    def import_chats(self, path: str = "") -> None:
        """A Basechat export or a SillyTavern chat log (``.jsonl``), into the history; the status
        line says what was kept, or in one line what the file looks like instead."""
        from pathlib import Path

        from app.errors import BasechatError
        from app.store.chat_files import import_chat_file

        path = path or QFileDialog.getOpenFileName(self.w, "Import chats", "", _IMPORT_KINDS)[0]
        if not path:
            return
        said: list[str] = []
        try:
            ids = import_chat_file(self.w.store, Path(path), said.append)
        except BasechatError as exc:
            self.w.statusBar().showMessage(str(exc), 15000)
            return
        self.w.statusBar().showMessage(" · ".join(said) or f"Imported {len(ids)} chat(s).", 15000)
        if ids:
            self.open(ids[-1])
            self.w.sidebar.refresh(select=ids[-1])
