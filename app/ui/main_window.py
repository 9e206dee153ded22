"""The main window: conversations on the left, the chat in the middle, the frame panel on the right.

The window keeps no conversation data of its own: the store is the model,
the widgets show it, and the engine worker (on its own thread) sends tokens
back through signals.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QEvent, QSettings, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.errors import BasechatError
from app.models.catalog import CatalogEntry, load_catalog
from app.models.default import DEFAULT_MODEL_ID
from app.scaffold import DEFAULT_TEMPLATE, Message, Template, load_template
from app.scaffold.template import save_user_template, template_to_dict
from app.store import ChatStore
from app.store.export import TEMPLATE_KEY, as_messages, conversation_template
from app.ui.composer import Composer
from app.ui.frame import FramePanel
from app.ui.loom_window import Loom, with_alternatives
from app.ui.messages import ConversationView, MessageWidget, copy_to_clipboard
from app.ui.notebook import Notebook
from app.ui.settings import SettingsDialog, load_engine, load_sampling, load_server, save_sampling
from app.ui.sidebar import Sidebar
from app.ui.worker import SERVER_ID, EngineWorker, ReplyRequest


def load_style() -> str:
    """The window's stylesheet (resources/styles/basechat.qss); none if it cannot be read."""
    from app.paths import resources_dir

    try:
        return (resources_dir() / "styles" / "basechat.qss").read_text(encoding="utf-8")
    except OSError:
        return ""


SHORTCUTS = [
    ("Enter", "send"), ("Shift+Enter", "new line"), ("Esc", "stop the reply"), ("Ctrl+N", "new chat"),
    ("Ctrl+F", "search chats"), ("Ctrl+R", "regenerate the last reply"),
    ("Ctrl+Shift+C", "copy the last reply"), ("Ctrl+E", "export this chat"),
    ("Ctrl+I", "import a character card or frame"), ("Ctrl+Shift+R", "write alternatives of the last reply"),
    ("Ctrl+Shift+N", "new notebook"), ("Ctrl+Enter", "continue a notebook from the cursor"),
    ("Ctrl+Q", "quit"),
]  # fmt: skip
_ROWS = "".join(f"<tr><td><b>{keys}</b></td><td>{what}</td></tr>" for keys, what in SHORTCUTS)
SHORTCUTS_HTML = f"<table cellpadding=3>{_ROWS}</table>"
MIN_TOKENS_FOR_SPEED = 16  # a speed measured over fewer tokens is noise
CONTINUABLE = ("length", "cancelled")  # a reply cut by the limit or by Stop can be continued


class MainWindow(QMainWindow):
    """Signals to the worker (queued onto its thread): load, generate, inspect."""

    request_load = Signal(str, str, object)
    request_generate = Signal(object)
    request_inspect = Signal(int, object, object, str, object)

    def __init__(self, store: ChatStore, settings: QSettings | None = None) -> None:
        super().__init__()
        self.store = store
        self.settings = settings or QSettings()
        self.setWindowTitle("Basechat")
        self.setAcceptDrops(True)
        self.setStyleSheet(load_style())
        self.conversation_id: int | None = None
        self.template: Template = load_template(DEFAULT_TEMPLATE)
        self.streaming: MessageWidget | None = None
        self.request_id = 0
        self.abandoned = 0  # a reply stopped by switching away; its end frees the composer
        self.stopped = 0  # the reply Stop was pressed for: what still streams in is not drawn
        self._restyling = False
        self.shown_at_stop = ""
        self.recommended: CatalogEntry | None = None  # what the empty chat suggests downloading
        self.pending_text = ""  # what the last send typed, given back if the send fails
        self.current_mode = "send"
        self._ids = itertools.count(1)
        self.model_info: dict = {}
        self._build()
        self._start_worker()
        self.notebook = Notebook(self)
        self.pages.addWidget(self.notebook.page)
        self._restore()
        self.sidebar.refresh()
        self.frame.show_template(self.template)
        self.show_empty()
        self._reopen_last()
        if store.notice:
            self.statusBar().showMessage(store.notice, 15000)

    # -- layout ----------------------------------------------------------------

    def _build(self) -> None:
        self.sidebar = Sidebar(self.store)
        self.view = ConversationView()
        self.composer = Composer()
        self.chat_page = QWidget()
        column = QVBoxLayout(self.chat_page)
        column.addWidget(self.view, 1)
        column.addWidget(self.composer)
        self.pages = QStackedWidget()  # the chat, or a notebook (built once the worker exists)
        self.pages.addWidget(self.chat_page)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pages)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([220, 700])
        self.setCentralWidget(self.splitter)
        self.frame = FramePanel()
        self.frame_dock = QDockWidget("Conversation frame")
        self.frame_dock.setObjectName("frameDock")
        self.frame_dock.setWidget(self.frame)
        self.frame.setMinimumWidth(360)  # the inspector is readable at the default window size
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.frame_dock)
        self.frame_dock.hide()
        self.loom = Loom(self)
        self._toolbar()
        self._menus()
        self._status()
        self._connect()
        self._shortcuts()

    def _toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.addWidget(QLabel(" Model: "))
        self.model_picker = QComboBox()
        self.model_picker.setAccessibleName("Model")
        self.model_picker.setMinimumWidth(220)
        bar.addWidget(self.model_picker)
        self.device_label = QLabel("")
        self.device_label.setAccessibleName("Device")
        self.device_label.setMinimumWidth(150)  # the buttons after it do not jump when it fills in
        bar.addWidget(self.device_label)
        bar.addSeparator()
        self.models_action = bar.addAction("Models…", self.open_models)
        self.frame_action = self.frame_dock.toggleViewAction()
        self.frame_action.setText("Frame")
        bar.addAction(self.frame_action)
        bar.addAction("Settings…", self.open_settings)
        self._fill_model_picker()

    def _menus(self) -> None:
        """The application menu: what a desktop app is expected to have."""
        chat = self.menuBar().addMenu("&Chat")
        chat.addAction("&New chat", QKeySequence.StandardKey.New, self.new_chat)
        chat.addAction("New note&book", QKeySequence("Ctrl+Shift+N"), self.new_notebook)
        chat.addAction("&Export chat…", QKeySequence("Ctrl+E"), self.export_chat)
        chat.addAction("&Import frame…", QKeySequence("Ctrl+I"), self.frame._import)
        chat.addAction("Write &alternatives of the last reply", QKeySequence("Ctrl+Shift+R"),
                       self.loom.write_alternatives)  # fmt: skip
        chat.addSeparator()
        chat.addAction("&Quit", QKeySequence("Ctrl+Q"), self.close)
        view = self.menuBar().addMenu("&View")
        view.addAction(self.frame_dock.toggleViewAction())
        view.addAction(self.loom.dock.toggleViewAction())
        view.addAction("&Models…", self.open_models)
        view.addAction("&Settings…", QKeySequence.StandardKey.Preferences, self.open_settings)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&Keyboard shortcuts", QKeySequence.StandardKey.HelpContents, self.show_shortcuts)
        help_menu.addAction("&About Basechat", self.show_about)

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS_HTML)

    def show_about(self) -> None:
        from app.ui.about import about_html

        QMessageBox.about(self, "About Basechat", about_html(self.model_info))

    def _status(self) -> None:
        self.status_line = QLabel("Loading model…")
        self.status_line.setAccessibleName("Status")
        self.statusBar().addPermanentWidget(self.status_line)
        self.busy = QProgressBar()  # a small busy indicator while a model loads or a reply starts
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.setAccessibleName("Busy")
        self.busy.hide()
        self.statusBar().addPermanentWidget(self.busy)
        self.last_used = 0  # tokens the last reply's prompt and text took
        self.last_speed = ""

    def _show_status(self) -> None:
        """One line: model · device · tokens used / context · speed of the last reply (when it
        was long enough for the figure to mean something)."""
        info = self.model_info
        if not info:
            return
        parts = [info["label"], info["device"], f"{self.last_used:,} / {info['n_ctx']:,} tokens"]
        self.status_line.setText(" · ".join(parts + ([self.last_speed] if self.last_speed else [])))

    def _model_label(self, info: dict) -> str:
        """The catalog's name for a local model ("Gemma 3 270M (base)"), else the engine's;
        looked up once when the model is ready, not at every status update."""
        for entry in load_catalog():
            if entry.id == info.get("id"):
                return entry.name
        return info.get("name", "")

    def _connect(self) -> None:
        self.composer.submitted.connect(self.send)
        self.composer.stop_requested.connect(self.stop)
        self.sidebar.selected.connect(self.open_conversation)
        self.sidebar.new_requested.connect(self.new_chat)
        self.sidebar.rename_requested.connect(self.rename_chat)
        self.sidebar.delete_requested.connect(self.delete_chat)
        self.sidebar.export_requested.connect(self.export_chat)
        self.view.recommend.clicked.connect(self.download_recommended)
        self.model_picker.activated.connect(lambda _i: self._pick_model())
        self.frame.frame_changed.connect(self.set_template)
        self.frame.save_requested.connect(self._save_template)
        self.frame.import_requested.connect(self.import_frame)
        self.frame.copy_prompt_requested.connect(self.copy_prompt)
        self._inspect_timer = QTimer(self, singleShot=True, interval=400)
        self._inspect_timer.timeout.connect(self.inspect_prompt)
        self.composer.editor.textChanged.connect(self._inspect_timer.start)
        self.frame_dock.visibilityChanged.connect(self._frame_shown)

    def _frame_shown(self, shown: bool) -> None:
        if shown:
            self.inspect_prompt()

    def _shortcuts(self) -> None:
        shortcuts: list[tuple[QKeySequence | QKeySequence.StandardKey, Callable[[], object], str]] = [
            (QKeySequence.StandardKey.Find, self.sidebar.search.setFocus, "Search chats"),
            (QKeySequence("Ctrl+Shift+C"), self.copy_last_reply, "Copy last reply"),
            (QKeySequence("Ctrl+R"), self.regenerate_last, "Regenerate"),
        ]
        for keys, slot, name in shortcuts:
            action = QAction(name, self)
            action.setShortcut(keys)
            action.triggered.connect(slot)
            self.addAction(action)

    # -- worker ----------------------------------------------------------------

    def _start_worker(self) -> None:
        self.engine_thread = QThread(self)
        self.engine_thread.setObjectName("engine")
        self.worker = EngineWorker(self.store)
        self.worker.moveToThread(self.engine_thread)
        self.request_load.connect(self.worker.load_model)
        self.request_generate.connect(self.worker.generate)
        self.request_inspect.connect(self.worker.inspect)
        self.worker.model_loading.connect(self._model_loading)
        self.worker.model_ready.connect(self._model_ready)
        self.worker.model_failed.connect(self._model_failed)
        self.worker.token.connect(self._token)
        self.worker.alternative_token.connect(self.loom.alternative_token)
        self.worker.reply_done.connect(self._reply_done)
        self.worker.reply_failed.connect(self._reply_failed)
        self.worker.inspected.connect(self._inspected)
        self.engine_thread.start()

    def load_model(self, model_id: str) -> None:
        """Load a local model by id, or the server when Settings say "Engine: Server"."""
        engine = load_engine(self.settings)
        if engine.server is not None:
            self.request_load.emit(SERVER_ID, "", engine)
            return
        try:
            from app.models.catalog import resolve_model

            model_id, path = resolve_model(model_id if model_id != SERVER_ID else None)
        except BasechatError as exc:
            self._model_failed(str(exc))
            return
        self.request_load.emit(model_id, str(path), engine)

    def _fill_model_picker(self) -> None:
        self.model_picker.clear()
        for entry in load_catalog():
            if entry.installed or entry.embedded:
                self.model_picker.addItem(entry.name, entry.id)
        server = load_server(self.settings)
        if server is not None:
            remote = self.model_info.get("name") if self.model_info.get("kind") == "remote" else None
            self.model_picker.addItem(f"{remote or server.url} (server)", SERVER_ID)
        current = self.model_info.get("id") or self.settings.value("model", DEFAULT_MODEL_ID)
        index = self.model_picker.findData(current)
        self.model_picker.setCurrentIndex(max(index, 0))

    def _pick_model(self) -> None:
        model_id = self.model_picker.currentData()
        if model_id and model_id != self.model_info.get("id"):
            self._abandon_reply()  # the load is queued behind the stopping reply on the worker
            self.settings.setValue("engine/mode", "server" if model_id == SERVER_ID else "local")
            self.load_model(model_id)

    def _model_loading(self, model_id: str) -> None:
        self.status_line.setText(f"Loading {model_id}…")
        self.busy.show()
        self.composer.button.setEnabled(False)

    def _model_ready(self, info: dict) -> None:
        self.model_info = {**info, "label": self._model_label(info)}
        if info["kind"] == "local":
            self.settings.setValue("model", info["id"])
            self.device_label.setText(f"  {info['device']} · {info['threads']} threads")
        else:
            self.device_label.setText(f"  {info['device']} at {info['location']}")
        self.busy.hide()
        self.last_used, self.last_speed = 0, ""
        self._show_status()
        self.frame.engine_note.setText(info["note"])
        self._recommend_a_model()
        self.composer.button.setEnabled(True)
        self._fill_model_picker()
        if info.get("instruct"):
            self.statusBar().showMessage(
                "This model looks instruction-tuned; Basechat is made for base models.", 10000
            )
        self.inspect_prompt()

    def _recommend_a_model(self) -> None:
        """With only the embedded model here, a new chat suggests the best one that fits."""
        from app.models.fit import fits_here, recommend
        from app.ui.background import run_in_background

        entries = load_catalog()
        if any(e.installed and not e.embedded for e in entries):
            return

        def show(choice) -> None:
            if choice is None:
                return
            entry, fit = choice
            self.recommended = entry
            self.view.recommend.setText(
                f"For better answers, download {entry.name} ({entry.size / 1e9:.1f} GB, "
                f"about {fit.est_tokens_per_s:.0f} tokens/s here)"
            )
            self.view.recommend.setVisible(not self.view.turns)

        def pick(_report):
            fits = fits_here(entries)
            entry = recommend(entries, fits)
            return (entry, fits[entry.id]) if entry else None

        run_in_background(pick, show, lambda _message: None)

    def download_recommended(self) -> None:
        """One click: the model manager opens with the recommended model downloading."""
        from app.ui.models_dialog import ModelsDialog

        if self.recommended is None:
            return
        wanted = self.recommended.id
        dialog = ModelsDialog(self)
        dialog.models_changed.connect(self._fill_model_picker)
        row = next(i for i, e in enumerate(load_catalog()) if e.id == wanted)
        dialog.start_download(row)
        self.view.recommend.hide()
        self.view.recommend.setText("")
        dialog.show()

    def _model_failed(self, message: str) -> None:
        self.busy.hide()
        if not self.model_info:
            self.status_line.setText("No model loaded")
        self.composer.button.setEnabled(bool(self.model_info))
        self.statusBar().showMessage(message, 15000)
        self._fill_model_picker()

    # -- conversations -----------------------------------------------------------

    def show_empty(self) -> None:
        self.view.clear()
        self.conversation_id = None
        self._show_greeting()

    def _abandon_reply(self) -> None:
        """Switching away while a reply streams stops it; what was written is kept in the store."""
        if self.streaming is not None:
            self.worker.stop()
            self.abandoned, self.request_id, self.streaming = self.request_id, 0, None

    def new_chat(self) -> None:
        self._abandon_reply()
        self.pages.setCurrentWidget(self.chat_page)
        self.show_empty()
        self.settings.remove("last_conversation")
        self.sidebar.list.clearSelection()
        self.composer.editor.setFocus()
        self.inspect_prompt()

    def new_notebook(self) -> None:
        """A document the model continues: no transcript, the same tree and alternatives."""
        self._abandon_reply()
        self.open_conversation(self.notebook.new())
        self.sidebar.refresh(select=self.conversation_id)
        self.notebook.page.editor.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        self._abandon_reply()
        conversation = self.store.get(conversation_id)
        self.conversation_id = conversation_id
        self.settings.setValue("last_conversation", conversation_id)
        if conversation.kind == "notebook":
            self.view.clear()
            self.pages.setCurrentWidget(self.notebook.page)
            self.notebook.show(conversation_id)
            self.loom.refresh_tree()
            return
        self.pages.setCurrentWidget(self.chat_page)
        self.template = conversation_template(conversation)
        self.frame.show_template(self.template)
        self.view.clear()
        self._show_greeting()
        self.loom.drop_box()
        for message in conversation.messages:
            self._show_message(message, last=message is conversation.messages[-1])
        self.loom.refresh_tree()
        self.inspect_prompt()

    def _reopen_last(self) -> None:
        """The chat that was open when Basechat closed opens again."""
        last = self.settings.value("last_conversation")
        known = {c.id for c in self.store.list_conversations()}
        if last is not None and int(str(last)) in known:
            self.open_conversation(int(str(last)))
            self.sidebar.refresh(select=self.conversation_id)

    def _show_greeting(self) -> None:
        self.view.show_greeting(self.template.assistant_name, self.template.greeting)

    def _show_message(self, message, last: bool) -> MessageWidget:
        turn = self._turn(message.role, message.position)
        self._finish_turn(turn, message, last)
        return turn

    def _finish_turn(self, turn: MessageWidget, message, last: bool = True) -> None:
        """A stored turn as shown: its text, a note, and the buttons that fit it."""
        notes = {"cancelled": "stopped", "length": "length limit"}
        note = (
            "interrupted" if message.status == "interrupted" else notes.get(message.finish_reason or "", "")
        )
        turn.set_final(message.text, note)
        can_continue = message.finish_reason in CONTINUABLE or message.status == "interrupted"
        turn.add_actions(message.alternative, message.alternatives, can_continue, last, message.has_probs)

    def _show_user_turn(self, position: int, text: str) -> None:
        """A message the person sends has its Copy and Edit at once, as after a reload."""
        turn = self._turn("user", position)
        turn.set_final(text)
        turn.add_actions()

    def _turn(self, role: str, position: int) -> MessageWidget:
        speaker = self.template.user_name if role == "user" else self.template.assistant_name
        turn = self.view.add_turn(role, position, speaker)
        turn.copy_requested.connect(copy_to_clipboard)
        turn.regenerate.connect(self.regenerate)
        turn.continue_.connect(self.continue_reply)
        turn.edit.connect(self.edit_message)
        turn.edited.connect(self._apply_edit)
        turn.alternative.connect(self.choose_alternative)
        turn.tokens.connect(self.loom.toggle_tokens)
        return turn

    def rename_chat(self, conversation_id: int) -> None:
        title, ok = QInputDialog.getText(
            self, "Rename chat", "Title:", text=self.store.get(conversation_id).title
        )
        if ok and title.strip():
            self.store.rename(conversation_id, title)
            self.sidebar.refresh(select=self.conversation_id)

    def delete_chat(self, conversation_id: int) -> None:
        if self.streaming is not None and conversation_id == self.conversation_id:
            return
        title = self.store.get(conversation_id).title
        answer = QMessageBox.question(self, "Delete chat", f"Delete “{title}”? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.store.delete(conversation_id)
        if conversation_id == self.conversation_id:
            self.new_chat()  # nothing of the deleted chat stays on screen
            self.last_used, self.last_speed = 0, ""
            self._show_status()
        self.sidebar.refresh(select=self.conversation_id)
        self.statusBar().showMessage(f"Deleted “{title}”.", 5000)

    def export_chat(self, conversation_id: int | None = None) -> None:
        """Markdown, JSON (restorable) or the exact prompt, to a file the person picks."""
        from pathlib import Path

        from app.store import export

        conversation_id = conversation_id or self.conversation_id
        if conversation_id is None:
            return
        conversation = self.store.get(conversation_id)
        kinds = "Markdown (*.md);;JSON, restorable (*.json);;Prompt text (*.txt)"
        path, kind = QFileDialog.getSaveFileName(self, "Export chat", f"{conversation.title[:40]}.md", kinds)
        if not path:
            return
        if kind.startswith("JSON"):
            import json

            text = json.dumps(export.to_json(self.store, [conversation_id]), ensure_ascii=False, indent=1)
        elif kind.startswith("Prompt"):
            text = export.to_prompt(conversation)
        else:
            text = export.markdown_of(self.store, conversation_id)
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            self.statusBar().showMessage(f"Cannot write {path}: {exc.strerror or exc}", 10000)
            return
        self.statusBar().showMessage(f"Exported to {path}", 6000)

    # -- replies -------------------------------------------------------------------

    def _thread(self) -> list:
        """The current conversation's visible turns, read once per action."""
        return [] if self.conversation_id is None else self.store.get(self.conversation_id).messages

    def history(self) -> list[Message]:
        return as_messages(self._thread())

    def send(self, text: str) -> None:
        if self.streaming is not None or not self.model_info:
            return
        history = self.history()
        if self.conversation_id is None:
            self.conversation_id = self.store.create_conversation(
                template=self.template.name, settings=self._conversation_settings(),
                model=self.model_info.get("id", ""),
            )  # fmt: skip
            self.settings.setValue("last_conversation", self.conversation_id)
        position = len(history)
        self.pending_text = text
        self.store.add_user_message(self.conversation_id, text)
        self._show_user_turn(position, text)
        self.sidebar.refresh(select=self.conversation_id)
        request = ReplyRequest(0, self.conversation_id, history, self.template, self._params(),
                               user_text=text)  # fmt: skip
        self._generate_some(with_alternatives(request, self.loom.alternatives_per_reply()), position + 1)

    def _generate_some(self, request: ReplyRequest, position: int) -> None:
        """One reply, or several at once when the request asks for alternatives."""
        if request.n > 1:
            self.loom.start_alternatives(request, position)
        else:
            self._generate(request, position)

    def _generate(self, request: ReplyRequest, position: int, start: str = "") -> None:
        self.request_id = next(self._ids)
        self.current_mode = request.mode
        self.streaming = self._turn("assistant", position)
        self.streaming.begin_stream(start)
        self.busy.show()
        self.composer.set_busy(True)
        self.request_generate.emit(replace(request, request_id=self.request_id))

    def _params(self):
        overrides = {}
        if self.conversation_id is not None:
            overrides = self.store.settings(self.conversation_id).get("sampling", {})
        return load_sampling(self.settings, overrides)

    def _conversation_settings(self) -> dict:
        from dataclasses import asdict

        return {
            "sampling": asdict(load_sampling(self.settings)),
            TEMPLATE_KEY: template_to_dict(self.template),
        }

    def stop(self) -> None:
        """Stop shows at once: tokens still queued from the engine's thread are not drawn."""
        self.worker.stop()
        if self.streaming is not None:
            self.streaming.status.setText("stopped")
            self.stopped = self.request_id
            self.shown_at_stop = self.streaming.streamed_text

    def _token(self, request_id: int, chunk: str) -> None:
        if request_id == self.request_id and self.streaming is not None and request_id != self.stopped:
            self.busy.hide()
            self.streaming.append(chunk)

    def _reply_done(self, request_id: int, outcome) -> None:
        if request_id == self.abandoned:
            self.composer.set_busy(False)
            self.sidebar.refresh(select=self.conversation_id)
        if request_id != self.request_id:
            return
        self.streaming = None
        self.busy.hide()
        self.composer.set_busy(False)
        if request_id == self.stopped and self.conversation_id is not None:
            self.store.trim_last_reply(self.conversation_id, self.shown_at_stop.strip())
        self._mark_older_turns()
        self._reload_last_turn()
        self.loom.alternatives_done()
        self.loom.refresh_tree()
        usage = outcome.usage
        self.last_used = usage.prompt_tokens + usage.completion_tokens
        measurable = usage.completion_tokens >= MIN_TOKENS_FOR_SPEED
        self.last_speed = f"{usage.tokens_per_s:.0f} tok/s" if measurable else ""
        self._show_status()
        if outcome.dropped_turns:
            self.statusBar().showMessage(f"{outcome.dropped_turns} old turns were left out to fit.", 8000)
        self.sidebar.refresh(select=self.conversation_id)
        self.inspect_prompt()
        if outcome.error:
            self.statusBar().showMessage(outcome.error, 15000)

    def _mark_older_turns(self) -> None:
        """The reply before this one is no longer the newest: it loses Regenerate and Continue."""
        older = [t for t in self.view.turns[:-1] if t.role == "assistant"]
        if older:
            older[-1].add_actions(*older[-1].versions, can_continue=False, last=False)

    def _reload_last_turn(self) -> None:
        """Show the finished reply as stored: Markdown, alternatives and buttons."""
        assert self.conversation_id is not None
        self._finish_turn(self.view.turns[-1], self.store.get(self.conversation_id).messages[-1])

    def _reply_failed(self, request_id: int, message: str) -> None:
        if request_id == self.abandoned:
            self.composer.set_busy(False)
        if request_id != self.request_id:
            return
        self.streaming = None
        self.busy.hide()
        self.composer.set_busy(False)
        self.statusBar().showMessage(message, 15000)
        self.loom.drop_box()
        self._give_back_failed_send()

    def _give_back_failed_send(self) -> None:
        """A send that got no reply is undone: the text goes back into the composer."""
        turns = self.view.turns
        fresh_send = self.current_mode == "send" and len(turns) >= 2 and turns[-2].role == "user"
        if fresh_send and not turns[-1].streamed_text.strip() and self.conversation_id is not None:
            position = turns[-2].position
            self.store.truncate(self.conversation_id, position)
            self.view.remove_from(position)
            if not self.composer.editor.toPlainText().strip():
                self.composer.editor.setPlainText(self.pending_text)
            self.sidebar.refresh(select=self.conversation_id)
        elif turns:
            turns[-1].set_final(turns[-1].streamed_text, "failed")

    def regenerate(self, position: int, n: int = 1) -> None:
        if self.streaming is not None or self.conversation_id is None or position < 1:
            return
        thread = self._thread()
        history, user = as_messages(thread[: position - 1]), thread[position - 1]
        self.view.remove_from(position)
        request = ReplyRequest(0, self.conversation_id, history, self.template, self._params(),
                               mode="regenerate", user_text=user.text, position=position, n=n)  # fmt: skip
        self._generate_some(request, position)

    def regenerate_last(self) -> None:
        if self.view.turns and self.view.turns[-1].role == "assistant":
            self.regenerate(self.view.turns[-1].position)

    def continue_reply(self, position: int) -> None:
        if self.streaming is not None or self.conversation_id is None:
            return
        thread = self._thread()
        history, stored = as_messages(thread[: position + 1]), thread[position]
        self.view.remove_from(position)
        request = ReplyRequest(0, self.conversation_id, history, self.template, self._params(),
                               mode="continue", position=position, message_id=stored.id)  # fmt: skip
        self._generate(request, position, start=stored.text)

    def edit_message(self, position: int) -> None:
        """Open the message's inline editor; Save comes back through ``_apply_edit``."""
        if self.streaming is not None or self.conversation_id is None:
            return
        turn = next((t for t in self.view.turns if t.position == position), None)
        if turn is not None:
            turn.start_edit()

    def _apply_edit(self, position: int, text: str) -> None:
        """Either becomes a new version: a user message is resent on a new branch (the old one keeps
        its later turns), a reply edited by hand is shown in place."""
        if self.streaming is not None or self.conversation_id is None:
            return
        thread = self._thread()
        if thread[position].role == "assistant":
            self.store.add_edited_reply(self.conversation_id, position, text)
            stored = self.store.get(self.conversation_id).messages[position]
            turn = next(t for t in self.view.turns if t.position == position)
            self._finish_turn(turn, stored, last=turn is self.view.turns[-1])
            self.inspect_prompt()
            return
        history = as_messages(thread[:position])
        self.store.edit_user_message(self.conversation_id, position, text)
        self.view.remove_from(position)
        self._show_message(self.store.get(self.conversation_id).messages[position], last=False)
        self._generate(ReplyRequest(0, self.conversation_id, history, self.template, self._params(),
                                    user_text=text), position + 1)  # fmt: skip

    def choose_alternative(self, position: int, alternative: int) -> None:
        if self.streaming is not None or self.conversation_id is None:
            return
        self.store.choose_alternative(self.conversation_id, position, alternative)
        self._show_path_from(position)

    def _show_path_from(self, position: int) -> None:
        """The turn at ``position`` changes in place (the view stays put); the turns below it are
        the chosen branch's."""
        assert self.conversation_id is not None
        thread = self.store.get(self.conversation_id).messages
        turn = next(t for t in self.view.turns if t.position == position)
        self._finish_turn(turn, thread[position], last=position == len(thread) - 1)
        self.view.remove_from(position + 1)
        for message in thread[position + 1 :]:
            self._show_message(message, last=message is thread[-1])
        self.loom.refresh_tree()
        self.inspect_prompt()

    def copy_last_reply(self) -> None:
        replies = [t for t in self.view.turns if t.role == "assistant" and t is not self.streaming]
        if replies:
            copy_to_clipboard(replies[-1].text)

    # -- frame, settings, models -------------------------------------------------------

    def set_template(self, template: Template) -> None:
        self.template = template
        if self.conversation_id is not None:
            items = {TEMPLATE_KEY: template_to_dict(template)}
            self.store.merge_settings(self.conversation_id, items, template=template.name)
            self.open_conversation(self.conversation_id)
        elif not self.view.turns:
            self._show_greeting()
        self.inspect_prompt()

    def import_frame(self, path: str) -> None:
        """A card, preset or prompt file becomes a template of the person's own, used at once."""
        from pathlib import Path

        from app.scaffold.importers import import_file, save_imported

        try:
            imported = import_file(Path(path))
            template, _saved = save_imported(imported)
        except BasechatError as exc:
            self.statusBar().showMessage(str(exc), 15000)
            return
        notes = "".join(f" · {note}" for note in imported.notes)
        self.statusBar().showMessage(f"Imported {imported.kind} as '{template.name}'{notes}", 15000)
        self.frame.show_template(template)
        self.set_template(template)

    def copy_prompt(self) -> None:
        """The exact text the model reads before the next message, on the clipboard."""
        from app.scaffold.transcript import transcript_text
        from app.store.export import to_prompt

        if self.conversation_id is not None:
            text = to_prompt(self.store.get(self.conversation_id))
        else:
            text = transcript_text(self.template, [])
        copy_to_clipboard(text)
        self.statusBar().showMessage("Copied the prompt.", 4000)

    def changeEvent(self, event) -> None:
        """Qt resolves a stylesheet's palette() colours once: apply it again when the system
        switches between light and dark."""
        if event.type() == QEvent.Type.PaletteChange and not self._restyling:
            self._restyling = True
            self.setStyleSheet(self.styleSheet())
            self._restyling = False
        super().changeEvent(event)

    # -- dropping a file on the window imports it ------------------------------------

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.import_frame(files[0])

    def _save_template(self, template: Template) -> None:
        path = save_user_template(template)
        self.statusBar().showMessage(f"Saved template '{template.name}' to {path}", 8000)
        self.set_template(template)
        self.frame.show_template(template)

    def inspect_prompt(self) -> None:
        if self.frame_dock.isVisible() and self.model_info:
            rid = next(self._ids)
            text = self.composer.editor.toPlainText()
            self.request_inspect.emit(rid, self.template, self.history(), text, self._params())

    def _inspected(self, _request_id: int, text: str, tokens: int, room: int, n_ctx: int) -> None:
        self.frame.show_prompt(text, tokens, room, n_ctx)

    def open_settings(self) -> None:
        dialog = SettingsDialog(
            self._params(), load_engine(self.settings), self, self.loom.alternatives_per_reply()
        )
        if dialog.exec():
            save_sampling(self.settings, dialog.sampling())
            self.settings.setValue("loom/alternatives", dialog.alternatives.value())
            engine_before = load_engine(self.settings)
            notice = dialog.save_engine(self.settings)
            if notice:
                self.statusBar().showMessage(notice, 10000)
            if self.conversation_id is not None:
                from dataclasses import asdict

                self.store.merge_settings(self.conversation_id, {"sampling": asdict(dialog.sampling())})
            if load_engine(self.settings) != engine_before:
                self.load_model(str(self.settings.value("model", DEFAULT_MODEL_ID)))

    def open_models(self) -> None:
        from app.ui.models_dialog import ModelsDialog

        dialog = ModelsDialog(self)
        dialog.models_changed.connect(self._fill_model_picker)
        dialog.exec()

    # -- state ---------------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 720)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.worker.stop()
        self.engine_thread.quit()
        self.engine_thread.wait(10000)
        self.worker.release_model()
        super().closeEvent(event)
