"""Frame and settings actions for the window: the conversation's template (edit, save, import a
card or preset, copy the exact prompt), the prompt inspector, and the Settings dialog."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from app.errors import BasechatError
from app.models.default import DEFAULT_MODEL_ID
from app.models.drafts import draft_partners
from app.scaffold import Template
from app.scaffold.template import save_user_template, template_slug
from app.service import as_messages
from app.ui.messages import copy_to_clipboard
from app.ui.serving import serving_wanted
from app.ui.settings import SettingsDialog, load_engine, save_sampling

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class FrameActions(QObject):
    """A QObject on the GUI thread, so the worker's answers reach it queued."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        frame = window.frame
        frame.frame_changed.connect(self.set_template)
        frame.save_requested.connect(self.save_template)
        frame.import_requested.connect(self.import_frame)
        frame.import_together_requested.connect(self.import_frame)
        frame.copy_prompt_requested.connect(self.copy_prompt)
        frame.lorebook.import_requested.connect(self.import_lorebook)
        self.inspect_timer = QTimer(self, singleShot=True, interval=400)
        self.inspect_timer.timeout.connect(self.inspect_prompt)
        window.composer.editor.textChanged.connect(self.inspect_timer.start)
        window.frame_dock.visibilityChanged.connect(self._frame_shown)
        window.worker.inspected.connect(self.on_inspected)
        window.worker.lore_inspected.connect(self.on_lore_inspected)
        window.worker.plan_inspected.connect(self.on_plan_inspected)

    def _frame_shown(self, shown: bool) -> None:
        if shown:
            self.inspect_prompt()

    def set_template(self, template: Template) -> None:
        w = self.w
        w.template = template
        if w.conversation_id is not None:
            w.service.keep_frame(w.conversation_id, template)
            w.chats.open(w.conversation_id)
        elif not w.view.turns:
            w.chats.show_greeting()
        self.inspect_prompt()

    def remember(self, position: int) -> None:
        """Pin the message at ``position`` in this chat's memory: a line of the frame the model
        always reads (the Frame panel's Memory shows and edits it; an edit of the message is
        followed, ``ConversationService.pin``)."""
        w, cid = self.w, self.w.conversation_id
        shown = w.store.path_slice(cid, position, position + 1) if cid is not None else []
        if cid is None or not shown or not shown[0].text.strip():
            return
        pinned = w.service.pin(cid, shown[0].id, w.template)
        if pinned == w.template:
            w.statusBar().showMessage("Already in this chat's memory.", 5000)
            return
        w.frame.show_template(pinned)
        self.set_template(pinned)
        w.statusBar().showMessage(
            "Remembered: the model keeps it in mind in this chat (Frame → Memory).", 5000
        )

    def follow_stored_frame(self) -> None:
        """The chat's stored frame after the service changed it (a pinned message edited or
        deleted rewrites its memory line): the window's copy follows, so the next reply reads it."""
        w, cid = self.w, self.w.conversation_id
        if cid is None:
            return
        stored = w.service.open(cid, with_history=False).template
        if stored.memory != w.template.memory:
            w.template = replace(w.template, memory=stored.memory)
            w.frame.show_template(w.template)

    def import_frame(self, path: str | list[str]) -> None:
        """A card, preset or prompt file becomes a template of the person's own, used at once; a
        preset chosen together with a system-prompt preset becomes one template."""
        from pathlib import Path

        from app.scaffold.importers import save_imported
        from app.scaffold.imports import import_file
        from app.scaffold.preset_import import combine

        try:
            imported = combine([import_file(Path(p)) for p in ([path] if isinstance(path, str) else path)])
            template, _saved = save_imported(imported)
        except BasechatError as exc:
            self.w.statusBar().showMessage(str(exc), 15000)
            return
        notes = "".join(f" · {note}" for note in imported.notes)
        self.w.statusBar().showMessage(f"Imported {imported.kind} as '{template.name}'{notes}", 15000)
        self.w.frame.show_template(template)
        self.set_template(template)

    def import_lorebook(self, path: str) -> None:
        """A World Info file (or a card's book, or Kobold world info) becomes this chat's lorebook."""
        from pathlib import Path

        from app.scaffold.import_check import import_lorebook
        from app.scaffold.lorebook import add_entries

        try:
            book, notes = import_lorebook(Path(path).read_bytes(), Path(path).name)
        except (BasechatError, OSError) as exc:
            self.w.statusBar().showMessage(getattr(exc, "strerror", None) or str(exc), 15000)
            return
        template = replace(self.w.template, lorebook=add_entries(self.w.template.lorebook, book))
        extra = "".join(f" · {note}" for note in notes)
        self.w.statusBar().showMessage(f"{len(book.entries)} lorebook entries added{extra}", 15000)
        self.w.frame.show_template(template)
        self.set_template(template)

    def save_template(self, template: Template) -> None:
        template = replace(template, name=template_slug(template.name))
        try:
            path = save_user_template(template)
        except BasechatError as exc:
            self.w.statusBar().showMessage(str(exc), 15000)
            return
        self.w.statusBar().showMessage(f"Saved template '{template.name}' to {path}", 8000)
        self.set_template(template)
        self.w.frame.show_template(template)

    def copy_prompt(self) -> None:
        """The exact text the model reads before the next message, on the clipboard."""
        from app.scaffold.transcript import transcript_text
        from app.store.export import to_prompt

        w = self.w
        if w.conversation_id is not None:
            text = to_prompt(w.store.get(w.conversation_id))
        else:
            text = transcript_text(w.template, [])
        copy_to_clipboard(text)
        w.statusBar().showMessage("Copied the prompt.", 4000)

    def inspect_prompt(self) -> None:
        """Ask the engine for the exact prompt the composer's text would send (when shown)."""
        w = self.w
        if w.frame_dock.isVisible() and w.model_info:
            text, replies = w.composer.editor.toPlainText(), w.replies
            tail = replies.tail()
            where = (w.conversation_id, tail.start) if w.conversation_id is not None else None
            w.request_inspect.emit(
                replies.next_request_id(),
                w.template,
                as_messages(tail.messages),
                text,
                replies.params(),
                where,
            )

    def on_inspected(self, _request_id: int, text: str, tokens: int, room: int, n_ctx: int) -> None:
        self.w.frame.show_prompt(text, tokens, room, n_ctx)

    def on_lore_inspected(self, _request_id: int, fired: list) -> None:
        """A method, not a lambda: Qt then queues it onto the GUI thread from the worker's."""
        self.w.frame.show_lore(fired)

    def on_plan_inspected(self, _request_id: int, acted: list) -> None:
        self.w.frame.show_plan(acted)

    def open_settings(self) -> None:
        w = self.w
        ram = (w.model_info or {}).get("state_ram_mb")
        partners = tuple(e.id for e in draft_partners(str((w.model_info or {}).get("id", ""))))
        dialog = SettingsDialog(
            w.replies.params(),
            load_engine(w.settings),
            w,
            w.loom.alternatives_per_reply(),
            ram,
            partners,
            serving_wanted(w.settings),
        )
        if not dialog.exec():
            return
        save_sampling(w.settings, dialog.sampling())
        w.settings.setValue("loom/alternatives", dialog.alternatives.value())
        engine_before = load_engine(w.settings)
        serve_changed = dialog.serve.save(w.settings)
        notice = dialog.save_engine(w.settings)
        if notice:
            w.statusBar().showMessage(notice, 10000)
        if w.conversation_id is not None:
            w.service.keep_sampling(w.conversation_id, dialog.sampling())
        if load_engine(w.settings) != engine_before:
            w.models.load(str(w.settings.value("model", DEFAULT_MODEL_ID)))
        elif serve_changed:
            w.serving.apply()
        w.serving.use_sampling(dialog.sampling())
