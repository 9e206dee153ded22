"""The main window: conversations on the left, the chat in the middle, the frame panel on the right.

This module lays the window out and wires it; each concern has its own module and object:
``replies`` (the reply controller: every reply from request to stored turn), ``models``
(loading, the picker, the status line), ``chats`` (which conversation is shown), ``frames``
(the template, the prompt inspector, Settings), ``loom`` and ``notebook``. The window keeps no
conversation data of its own: the store is the model, the conversation service writes it, the
widgets show it, and the engine worker (on its own thread) answers through signals.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSettings, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.scaffold import DEFAULT_TEMPLATE, Template, load_template
from app.service import ConversationService
from app.store import ChatStore
from app.ui.composer import Composer
from app.ui.conversation_actions import ConversationActions
from app.ui.conversation_view import ConversationView
from app.ui.frame import FramePanel
from app.ui.frame_actions import FrameActions
from app.ui.loom_window import Loom
from app.ui.members import GroupActions, MemberBar
from app.ui.model_loading import ModelLoading
from app.ui.notebook import Notebook
from app.ui.replies import ReplyController
from app.ui.serving import ServeSwitch
from app.ui.sidebar import Sidebar
from app.ui.typeahead import TypeAhead
from app.ui.worker import EngineWorker


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


class MainWindow(QMainWindow):
    """Signals to the worker (queued onto its thread): load, generate, inspect."""

    request_load = Signal(str, str, object)
    request_generate = Signal(object)
    request_inspect = Signal(int, object, object, str, object, object)  # … the chat and its tail's start
    request_memory = Signal(int, object)  # a chat opened, and its frame: index what was said in it
    request_prefill = Signal(int, object, object, str, object, object)  # type-ahead (ui/typeahead.py)

    def __init__(self, store: ChatStore, settings: QSettings | None = None) -> None:
        super().__init__()
        self.store = store
        self.service = ConversationService(store)
        self.settings = settings or QSettings()
        self.setWindowTitle("Basechat")
        self.setAcceptDrops(True)
        self.setStyleSheet(load_style())
        self.conversation_id: int | None = None
        self.template: Template = load_template(DEFAULT_TEMPLATE)
        self.model_info: dict = {}
        self._restyling = False
        self._build()
        self._start_worker()
        self._controllers()
        self._menus()
        self._shortcuts()
        self._restore()
        self.sidebar.refresh()
        self.frame.show_template(self.template)
        self.chats.show_empty()
        self.chats.reopen_last()
        if store.notice:
            self.statusBar().showMessage(store.notice, 15000)
        QTimer.singleShot(0, self.composer.editor.setFocus)  # typing goes to the composer from the start

    # -- layout ----------------------------------------------------------------

    def _build(self) -> None:
        self.sidebar = Sidebar(self.store)
        self.view = ConversationView()
        self.composer = Composer()
        self.chat_page = QWidget()
        column = QVBoxLayout(self.chat_page)
        column.addWidget(self.view, 1)
        self.members_bar = MemberBar()
        column.addWidget(self.members_bar)
        column.addWidget(self.composer)
        self.pages = QStackedWidget()  # the chat, or a notebook
        self.pages.addWidget(self.chat_page)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pages)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([220, 700])
        self.setCentralWidget(self.splitter)
        self._frame_dock()
        self._toolbar()
        self._status()

    def _frame_dock(self) -> None:
        self.frame = FramePanel()
        self.frame_dock = QDockWidget("Conversation frame")
        self.frame_dock.setObjectName("frameDock")
        self.frame_dock.setWidget(self.frame)
        self.frame.setMinimumWidth(360)  # the inspector is readable at the default window size
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.frame_dock)
        self.frame_dock.hide()

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
        self.models_action = bar.addAction("Models…", lambda: self.models.open_models())
        self.frame_action = self.frame_dock.toggleViewAction()
        self.frame_action.setText("Frame")
        bar.addAction(self.frame_action)
        bar.addAction("Settings…", lambda: self.frames.open_settings())

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

    def _start_worker(self) -> None:
        self.engine_thread = QThread(self)
        self.engine_thread.setObjectName("engine")
        self.worker = EngineWorker(self.service)
        self.worker.moveToThread(self.engine_thread)
        self.request_load.connect(self.worker.load_model)
        self.request_generate.connect(self.worker.generate)
        self.request_inspect.connect(self.worker.inspect)
        self.request_memory.connect(self.worker.warm_memory)
        self.request_prefill.connect(self.worker.prefill)
        self.engine_thread.start()

    def _controllers(self) -> None:
        """One object per concern, each wired to the widgets and worker signals it needs."""
        self.replies = ReplyController(self)
        self.chats = ConversationActions(self)
        self.frames = FrameActions(self)
        self.loom = Loom(self)
        self.serving = ServeSwitch(self.worker, self.settings, self.statusBar())
        self.models = ModelLoading(self)
        self.notebook = Notebook(self)
        self.typeahead = TypeAhead(self)
        self.groups = GroupActions(self)
        self.pages.addWidget(self.notebook.page)
        self.composer.submitted.connect(self.replies.send)
        self.composer.stop_requested.connect(self.replies.stop)
        self.models.fill_picker()

    def _menus(self) -> None:
        """The application menu: what a desktop app is expected to have."""
        chat = self.menuBar().addMenu("&Chat")
        chat.addAction("&New chat", QKeySequence.StandardKey.New, self.chats.new_chat)
        chat.addAction("New note&book", QKeySequence("Ctrl+Shift+N"), self.chats.new_notebook)
        chat.addAction("New &group chat…", self.groups.new_group)
        chat.addAction("&Export chat…", QKeySequence("Ctrl+E"), self.chats.export)
        chat.addAction("&Import frame…", QKeySequence("Ctrl+I"), self.frame.choose_file_to_import)
        chat.addAction("Import c&hats…", self.chats.import_chats)
        chat.addAction("Write &alternatives of the last reply", QKeySequence("Ctrl+Shift+R"),
                       self.loom.write_alternatives)  # fmt: skip
        chat.addSeparator()
        chat.addAction("&Quit", QKeySequence("Ctrl+Q"), self.close)
        view = self.menuBar().addMenu("&View")
        view.addAction(self.frame_dock.toggleViewAction())
        view.addAction(self.loom.dock.toggleViewAction())
        view.addAction("&Models…", self.models.open_models)
        view.addAction("&Settings…", QKeySequence.StandardKey.Preferences, self.frames.open_settings)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&Keyboard shortcuts", QKeySequence.StandardKey.HelpContents, self.show_shortcuts)
        help_menu.addAction("&About Basechat", self.show_about)

    def _shortcuts(self) -> None:
        shortcuts = [
            (QKeySequence(QKeySequence.StandardKey.Find), self.sidebar.search.setFocus, "Search chats"),
            (QKeySequence("Ctrl+Shift+C"), self.replies.copy_last_reply, "Copy last reply"),
            (QKeySequence("Ctrl+R"), self.replies.regenerate_last, "Regenerate"),
        ]
        for keys, slot, name in shortcuts:
            action = QAction(name, self)
            action.setShortcut(keys)
            action.triggered.connect(slot)
            self.addAction(action)

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS_HTML)

    def show_about(self) -> None:
        from app.ui.about import about_html

        QMessageBox.about(self, "About Basechat", about_html(self.model_info))

    def load_model(self, model_id: str) -> None:
        self.models.load(model_id)

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
            self.frames.import_frame(files[0])

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
        self.serving.stop()
        self.worker.stop()
        self.engine_thread.quit()
        self.engine_thread.wait(10000)
        self.worker.release_model()
        super().closeEvent(event)
