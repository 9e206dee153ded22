"""The window's loom actions: alternatives, the token view and the tree panel, wired to the store.

Kept out of ``main_window.py`` so that module stays about the chat itself; everything here
reads and writes through the window's store and engine worker, like the rest of the window.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDockWidget, QMessageBox

from app.chat import branch_start
from app.errors import BasechatError
from app.ui.loom import AlternativesBox, TokenView, TreePanel
from app.ui.settings import DEFAULT_ALTERNATIVES
from app.ui.worker import ReplyRequest

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class Loom(QObject):
    """The loom's side of one main window."""

    def __init__(self, window: MainWindow) -> None:
        # A QObject living on the GUI thread: the worker's signals reach it queued, never
        # on the engine's thread (a plain Python receiver would be called directly there).
        super().__init__(window)
        self.w = window
        self.box: AlternativesBox | None = None
        self.tree = TreePanel()
        self.dock = QDockWidget("Conversation tree")
        self.dock.setObjectName("treeDock")
        self.dock.setWidget(self.tree)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.dock.visibilityChanged.connect(self._on_shown)
        self.tree.go_to.connect(self.go_to_message)
        self.tree.branch_from.connect(self.branch_from_message)
        self.tree.delete_branch.connect(self.delete_branch)
        window.worker.alternative_token.connect(self.alternative_token)

    def alternatives_per_reply(self) -> int:
        return int(str(self.w.settings.value("loom/alternatives", DEFAULT_ALTERNATIVES)))

    def _on_shown(self, shown: bool) -> None:
        if shown:
            self.refresh_tree()

    def refresh_tree(self) -> None:
        """Read only while the panel is shown: a long chat's tree is every message it has."""
        conversation = self.w.conversation_id
        if not self.dock.isVisible():
            return
        self.tree.show_tree(self.w.store.tree(conversation) if conversation is not None else [])

    # -- alternatives --------------------------------------------------------------------

    def start_alternatives(self, request: ReplyRequest, position: int) -> None:
        """The turn shows the first alternative when they end; meanwhile the box shows all."""
        self.drop_box()
        self.box = AlternativesBox(request.n, position)
        self.box.picked.connect(self.pick_alternative)
        self.w.replies.start(request, position)
        turn = self.w.replies.streaming
        assert turn is not None
        turn.status.setText(f"writing {request.n} alternatives…")
        self.w.view.add_box(self.box)

    def alternative_token(self, request_id: int, index: int, chunk: str) -> None:
        if self.box is not None and self.w.replies.is_drawn(request_id):
            self.w.busy.hide()
            self.box.append(index, chunk)

    def alternatives_done(self) -> None:
        if self.box is not None and self.w.conversation_id is not None:
            versions = self.w.store.alternatives(self.w.conversation_id, self.box.position)
            self.box.ids = [m.id for m in versions][-len(self.box.texts) :]
            self.box.finish()

    def pick_alternative(self, index: int) -> None:
        if self.box is None or self.w.replies.busy:
            return
        self.w.service.choose(self.box.ids[index])
        position = self.box.position
        self.drop_box()
        self.w.replies.show_path_from(position)

    def drop_box(self) -> None:
        if self.box is not None:
            self.box.deleteLater()
            self.box = None

    def write_alternatives(self) -> None:
        """Chat → Write alternatives: the newest reply again, as N versions at once."""
        turns = self.w.view.turns
        if not self.w.replies.busy and turns and turns[-1].role == "assistant":
            self.w.replies.regenerate(turns[-1].position, n=max(2, self.alternatives_per_reply()))

    # -- token view ----------------------------------------------------------------------

    def toggle_tokens(self, position: int) -> None:
        turn = next(t for t in self.w.view.turns if t.position == position)
        if turn.extra is not None:
            turn.toggle_extra(None)
            return
        rows = self.w.store.token_probs(self.w.replies.stored_at(position).id) or []
        view = TokenView(rows)
        view.branch.connect(lambda index, token: self.branch_at(position, index, token))
        turn.toggle_extra(view)

    def branch_at(self, position: int, index: int, token: int) -> None:
        """A new version of the reply at ``position``: kept up to token ``index``, ``token`` there,
        and the model goes on from it."""
        replies = self.w.replies
        if not replies.can_act():
            return
        try:
            start = branch_start(self.w.store.token_probs(replies.stored_at(position).id) or [], index, token)
        except BasechatError as exc:
            self.w.statusBar().showMessage(str(exc), 8000)
            return
        replies.branch(position, start)

    # -- tree ------------------------------------------------------------------------------

    def go_to_message(self, message_id: int) -> None:
        conversation_id = self.w.conversation_id
        if self.w.replies.can_act() and conversation_id is not None:
            self.w.service.choose(message_id)
            self.w.chats.open(conversation_id)

    def branch_from_message(self, message_id: int) -> None:
        """The shown path ends at this message: a user message gets a new reply; after a reply,
        the next message sent starts the new branch."""
        w, conversation_id = self.w, self.w.conversation_id
        if not w.replies.can_act() or conversation_id is None:
            return
        w.service.end_path_at(message_id)
        w.chats.open(conversation_id)
        turns = w.view.turns
        if turns and turns[-1].role == "user":
            w.replies.regenerate(turns[-1].position + 1)
        else:
            w.composer.editor.setFocus()
            w.statusBar().showMessage("Your next message starts a new branch from here.", 8000)

    def delete_branch(self, message_id: int) -> None:
        w, conversation_id = self.w, self.w.conversation_id
        if not w.replies.can_act() or conversation_id is None:
            return
        ask = QMessageBox.question(w, "Delete branch", "Delete this message and everything after it?")
        if ask != QMessageBox.StandardButton.Yes:
            return
        w.service.delete_branch(message_id, conversation_id)
        w.chats.open(conversation_id)


def with_alternatives(request: ReplyRequest, n: int) -> ReplyRequest:
    return replace(request, n=n) if n > 1 else request
