"""The conversation frame panel: template, preamble, speakers, examples, and the prompt inspector.

Signals: frame_changed(object Template), save_requested(object Template),
import_requested(str path), import_together_requested(list paths), copy_prompt_requested().
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.errors import TemplateError
from app.scaffold import Template, available_templates, load_template
from app.scaffold.importers import parse_examples
from app.ui.lorebook_panel import LorebookPanel
from app.ui.steps_panel import StepsPanel


class FramePanel(QWidget):
    frame_changed = Signal(object)
    save_requested = Signal(object)
    import_requested = Signal(str)
    import_together_requested = Signal(list)  # a preset and a system-prompt preset
    copy_prompt_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.template: Template | None = None
        self._fields()
        self._buttons()
        self.inspector = QPlainTextEdit()
        self.inspector.setReadOnly(True)
        self.inspector.setAccessibleName("Prompt inspector")
        self.inspector.setMinimumHeight(150)  # the tabs above would otherwise squeeze it to 4 lines
        self.usage = QProgressBar()
        self.usage.setAccessibleName("Context used")
        self.usage.setTextVisible(True)
        self.error = QLabel("")
        self._build()
        self._connect()

    def _fields(self) -> None:
        self.picker = QComboBox()
        self.picker.setAccessibleName("Template")
        self.preamble = QPlainTextEdit()
        self.preamble.setAccessibleName("Preamble")
        self.user_name = QLineEdit()
        self.user_name.setAccessibleName("User speaker name")
        self.assistant_name = QLineEdit()
        self.assistant_name.setAccessibleName("Assistant speaker name")
        self.examples = QPlainTextEdit()
        self.examples.setAccessibleName("Example exchanges")
        self.examples.setToolTip("One line per turn, each starting with a speaker's name and a colon.")
        self.greeting = QComboBox()
        self.greeting.setAccessibleName("Greeting")
        self.greeting.setToolTip("The character's opening message; cards may offer several.")
        self.edited_note = QLabel("")
        self.edited_note.setAccessibleName("Frame edited")
        self._chat_fields()

    def _chat_fields(self) -> None:
        """Per chat: the persona, the author's note, the lorebook and what of it fires."""
        self.persona = QPlainTextEdit()
        self.persona.setAccessibleName("Persona")
        self.persona.setPlaceholderText("Who you are in this chat ({{user}} is your name); put in the frame")
        self.persona.setMaximumHeight(60)
        self.memory = QPlainTextEdit()
        self.memory.setAccessibleName("Memory")
        self.memory.setPlaceholderText(
            "What the model keeps in mind in this chat, a line each (⚑ on a message adds it)"
        )
        self.memory.setMaximumHeight(80)
        self.authors_note = QLineEdit()
        self.authors_note.setAccessibleName("Author's note")
        self.authors_note.setPlaceholderText("A note the model reads near the end, e.g. 'Keep it light.'")
        self.note_depth = QSpinBox()
        self.note_depth.setRange(0, 1000)
        self.note_depth.setAccessibleName("Author's note depth")
        self.note_depth.setToolTip("Messages from the end the note goes: 0 is just before the reply")
        self.lorebook = LorebookPanel()
        self.steps = StepsPanel()
        self.plan_note = QLabel("")
        self.plan_note.setWordWrap(True)
        self.plan_note.setAccessibleName("What the message plan does")
        self.lore_note = QLabel("")
        self.lore_note.setWordWrap(True)
        self.lore_note.setAccessibleName("Lorebook entries in the prompt")

    def _buttons(self) -> None:
        self.apply_button = QPushButton("Apply to this chat")
        self.save_button = QPushButton("Save as new template…")
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip(
            "A character card (JSON or PNG), a SillyTavern preset, a llama.cpp prompt file, a "
            "text-generation-webui character, a Kobold Lite scenario or a template. You can also "
            "drop the file on the window."
        )
        self.reset_button = QPushButton("Reset to template")
        self.reset_button.setToolTip("Put back the template as saved, undoing this chat's edits to it")
        self.copy_prompt_button = QPushButton("Copy as prompt")
        self.copy_prompt_button.setToolTip("The exact text the model reads before the next message.")

    def _connect(self) -> None:
        self.picker.activated.connect(lambda _i: self._pick(self.picker.currentText()))
        self.apply_button.clicked.connect(self._apply)
        self.save_button.clicked.connect(self._save)
        self.import_button.clicked.connect(self.choose_file_to_import)
        self.copy_prompt_button.clicked.connect(self.copy_prompt_requested)
        self.greeting.activated.connect(self._pick_greeting)
        self.reset_button.clicked.connect(lambda: self._pick(self.template.name if self.template else "chat"))
        self.steps.toggled.connect(self._apply)

    def _build(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.addTab(_scrolling(self._frame_tab()), "Frame")
        self.tabs.addTab(_scrolling(self.lorebook), "Lorebook")
        self.tabs.addTab(self.steps, "Steps")
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 3)
        layout.addLayout(buttons)
        layout.addWidget(self.error)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(QLabel("Prompt the next message will send:"))
        prompt_row.addStretch()
        prompt_row.addWidget(self.copy_prompt_button)
        layout.addLayout(prompt_row)
        layout.addWidget(self.inspector, 1)
        layout.addWidget(self.plan_note)
        layout.addWidget(self.lore_note)
        layout.addWidget(self.usage)
        self.engine_note = QLabel("")  # e.g. a server whose token counts are only estimated
        self.engine_note.setWordWrap(True)
        self.engine_note.setAccessibleName("Engine note")
        layout.addWidget(self.engine_note)

    def _frame_tab(self) -> QWidget:
        form = QFormLayout()
        form.addRow("Template", self.picker)
        marker = QHBoxLayout()
        marker.addWidget(self.edited_note, 1)
        marker.addWidget(self.reset_button)
        form.addRow(marker)
        form.addRow("Preamble", self.preamble)
        form.addRow("User name", self.user_name)
        form.addRow("Assistant name", self.assistant_name)
        form.addRow("Examples", self.examples)
        form.addRow("Greeting", self.greeting)
        form.addRow("Persona", self.persona)
        form.addRow("Memory", self.memory)
        note_row = QHBoxLayout()
        note_row.addWidget(self.authors_note, 1)
        note_row.addWidget(QLabel("depth"))
        note_row.addWidget(self.note_depth)
        form.addRow("Author's note", note_row)
        frame_tab = QWidget()
        frame_tab.setLayout(form)
        return frame_tab

    def show_template(self, template: Template) -> None:
        self.template = template
        names = available_templates()
        self.picker.clear()
        self.picker.addItems(names if template.name in names else [*names, template.name])
        self.picker.setCurrentText(template.name)
        self.preamble.setPlainText(template.preamble)
        self.user_name.setText(template.user_name)
        self.assistant_name.setText(template.assistant_name)
        self.examples.setPlainText(examples_text(template))
        self._show_greetings(template)
        self.persona.setPlainText(template.persona)
        self.memory.setPlainText(template.memory)
        self.authors_note.setText(template.authors_note)
        self.note_depth.setValue(template.authors_note_depth)
        self.lorebook.show_book(template.lorebook)
        self.steps.show_steps_off(template.steps_off)
        self._mark_edits(template)
        self.error.setText("")

    def _mark_edits(self, template: Template) -> None:
        """Say when this chat's frame is no longer the template it was made from."""
        try:
            saved = load_template(template.name)
        except TemplateError:
            saved = None
        differs = saved is not None and _comparable(saved) != _comparable(template)
        self.edited_note.setText(f"Edited: differs from the template '{template.name}'." if differs else "")
        self.edited_note.setVisible(differs)
        self.reset_button.setVisible(differs)

    def _show_greetings(self, template: Template) -> None:
        self.greeting.clear()
        greetings = [g for g in (template.greeting, *template.alternate_greetings) if g]
        for number, text in enumerate(greetings, 1):
            self.greeting.addItem(f"{number}. {' '.join(text.split())[:70]}", text)
        self.greeting.setEnabled(len(greetings) > 1)
        if not greetings:
            self.greeting.addItem("(none)")

    def _pick_greeting(self, index: int) -> None:
        """Another of the card's greetings opens the chat; the others stay selectable."""
        if self.template is None or index < 0 or not self.template.greeting:
            return
        greetings = [self.template.greeting, *self.template.alternate_greetings]
        chosen = greetings.pop(index)
        template = replace(self.template, greeting=chosen, alternate_greetings=tuple(greetings))
        self.template = template
        self.frame_changed.emit(template)

    def choose_file_to_import(self) -> None:
        paths, _filter = QFileDialog.getOpenFileNames(
            self, "Import a frame", "", "Frames (*.json *.png *.txt *.yaml *.yml *.toml);;All files (*)"
        )
        if len(paths) == 1:
            self.import_requested.emit(paths[0])
        elif paths:
            self.import_together_requested.emit(paths)

    def show_prompt(self, text: str, tokens: int, room: int, n_ctx: int) -> None:
        """The prompt, and the context it takes with the room kept for the reply."""
        self.inspector.setPlainText(text)
        bar = self.inspector.verticalScrollBar()
        bar.setValue(bar.maximum())  # the newest turns are what changes
        self.usage.setMaximum(max(n_ctx, 1))
        self.usage.setValue(min(tokens + room, n_ctx))
        over = tokens + room - n_ctx
        if over > 0:
            self.usage.setFormat(f"{tokens:,} + {room:,} reply tokens: {over:,} over the {n_ctx:,} context")
        else:
            self.usage.setFormat(f"{tokens:,} prompt + {room:,} reply of {n_ctx:,} tokens")
        self.usage.setProperty("over", over > 0)
        self.usage.style().unpolish(self.usage)
        self.usage.style().polish(self.usage)

    def show_plan(self, acted: list[str]) -> None:
        """What each step of the next message's plan does, and why (``MessagePlan.acted``)."""
        lines = "\n".join(f"• {line}" for line in acted)
        self.plan_note.setText(f"What Basechat does to this message:\n{lines}" if acted else "")
        self.plan_note.setVisible(bool(acted))

    def show_lorebook_tab(self) -> None:
        self.tabs.setCurrentIndex(1)

    def show_lore(self, fired: list[dict]) -> None:
        """Which lorebook entries the next message puts in the prompt, and why (``ChatSession.lore_fired``,
        worked out with the prompt on the engine's thread)."""
        lines = [f"{f['name']} ({f['why']})" for f in fired]
        self.lore_note.setText("Lorebook: " + "; ".join(lines) if lines else "")
        self.lore_note.setVisible(bool(lines))

    def _pick(self, name: str) -> None:
        try:
            template = load_template(name)
        except TemplateError as exc:
            self.error.setText(str(exc))
            return
        self.show_template(template)
        self.frame_changed.emit(template)

    def edited(self) -> Template:
        """The template as edited; raises TemplateError with one line if it is not usable."""
        base = self.template or load_template("chat")
        user, assistant = self.user_name.text().strip(), self.assistant_name.text().strip()
        if not user or not assistant or user.casefold() == assistant.casefold() or ":" in user + assistant:
            raise TemplateError("Speaker names must be two different names without ':'.")
        if not self.preamble.toPlainText().strip():
            raise TemplateError("The preamble cannot be empty.")
        return replace(
            base, preamble=self.preamble.toPlainText().strip(), user_name=user, assistant_name=assistant,
            examples=parse_examples(self.examples.toPlainText(), user, assistant), source=None,
            persona=self.persona.toPlainText().strip(), memory=self.memory.toPlainText().strip(),
            authors_note=" ".join(self.authors_note.text().split()),
            authors_note_depth=self.note_depth.value(), lorebook=self.lorebook.book(),
            steps_off=self.steps.steps_off(base.steps_off),
        )  # fmt: skip

    def _apply(self) -> None:
        try:
            template = self.edited()
        except TemplateError as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        self.template = template
        self._mark_edits(template)
        self.frame_changed.emit(template)

    def _save(self) -> None:
        name, ok = QInputDialog.getText(self, "Save template", "Name for the new template:")
        if not ok or not name.strip():
            return
        try:
            template = replace(self.edited(), name=name.strip().replace(" ", "-").lower())
        except TemplateError as exc:
            self.error.setText(str(exc))
            return
        self.save_requested.emit(template)


def _scrolling(widget: QWidget) -> QScrollArea:
    """A tab whose fields scroll, so the panel fits a small screen and leaves the inspector room."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _comparable(template: Template) -> Template:
    """Which of a card's greetings opens the chat is a choice, not an edit."""
    greetings = tuple(sorted({template.greeting, *template.alternate_greetings} - {""}))
    return replace(template, source=None, greeting="", alternate_greetings=greetings)


def examples_text(template: Template) -> str:
    """Example exchanges one turn a line; several example chats are split by ``<START>``."""
    lines, block = [], None
    several = len({ex.block for ex in template.examples}) > 1
    for ex in template.examples:
        if several and ex.block != block:
            lines.append("<START>")
        block = ex.block
        lines += [f"{template.user_name}: {ex.user}", f"{template.assistant_name}: {ex.assistant}"]
    return "\n".join(lines)
