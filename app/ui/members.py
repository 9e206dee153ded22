"""A group chat in the window: the member bar above the composer (who is in the scene, who spoke
last and how likely each was; click a member to have them speak now; "Let them talk" for a few
turns without the person, ended by Stop), and Chat → New group chat….
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import BasechatError
from app.scaffold import DEFAULT_TEMPLATE, available_templates, load_template
from app.scaffold.group import Member, group_template, member_of, members_from

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

TALK_TURNS = 4  # "Let them talk": turns the members take by themselves, unless Stop comes first


class MemberBar(QWidget):
    """The members as buttons, the last choice's shares, and Let them talk (hidden in a chat of
    one character)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("memberBar")
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(4, 2, 4, 2)
        self.buttons: dict[str, QPushButton] = {}
        self.shares = QLabel("")
        self.shares.setAccessibleName("Who speaks next")
        self.turns = QSpinBox(minimum=1, maximum=20, value=TALK_TURNS)
        self.turns.setAccessibleName("Turns to let them talk")
        self.talk = QPushButton("Let them talk")
        self.talk.setToolTip("The members go on by themselves for this many turns; Stop ends it.")
        self.people = QHBoxLayout()
        self.row.addLayout(self.people)
        for widget in (self.shares, self.turns, self.talk):
            self.row.addWidget(widget)
        self.row.insertStretch(2)
        self.hide()

    def show_members(self, names: tuple[str, ...]) -> None:
        for button in self.buttons.values():
            self.people.removeWidget(button)
            button.deleteLater()
        self.buttons = {name: QPushButton(name) for name in names}
        for name, button in self.buttons.items():
            button.setToolTip(f"{name} speaks now; right-click to mute or unmute")
            button.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            self.people.addWidget(button)
        self.shares.setText("")
        self.setVisible(bool(names))


class GroupActions(QObject):
    """The member bar's actions, and starting a group chat."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.bar = window.members_bar
        self.talk_left = 0
        self.muted: set[str] = set()  # members the model never chooses (a click still has them speak)
        self.bar.talk.clicked.connect(lambda: self.let_them_talk(self.bar.turns.value()))
        window.worker.speaker_chosen.connect(self.on_speaker)
        window.worker.reply_done.connect(self.after_reply)
        window.worker.reply_failed.connect(self.stop_talking)
        window.composer.stop_requested.connect(self.stop_talking)

    def follow_frame(self) -> None:
        """The bar shows the open chat's members (none: hidden)."""
        self.talk_left = 0
        self.muted = set()
        self.bar.show_members(self.w.template.members)
        for name, button in self.bar.buttons.items():
            button.clicked.connect(lambda _=False, who=name: self.speak_now(who))
            button.customContextMenuRequested.connect(lambda _at, who=name: self.toggle_mute(who))

    def toggle_mute(self, name: str) -> None:
        """A muted member is never chosen to speak (a click on them still has them speak)."""
        self.muted ^= {name}
        button = self.bar.buttons[name]
        button.setText(f"{name} (muted)" if name in self.muted else name)
        button.setAccessibleName(button.text())

    def speak_now(self, name: str) -> None:
        """A member picked by the person speaks now, with no message from them."""
        self.w.replies.start_scene(name)

    def let_them_talk(self, turns: int) -> None:
        if not self.w.replies.can_act():
            return
        self.talk_left = turns - 1
        self.w.replies.start_scene()

    def after_reply(self, *_outcome) -> None:
        """In a scene let run, the next member's turn follows each reply until none are left."""
        if self.talk_left > 0 and self.w.replies.can_act():
            self.talk_left -= 1
            self.w.replies.start_scene()

    def stop_talking(self, *_args) -> None:
        self.talk_left = 0

    def on_speaker(self, request_id: int, name: str, shares: list) -> None:
        """The worker chose (or was told) who speaks: their name on the turn, the odds on the bar."""
        turn = self.w.replies.streaming
        if request_id == self.w.replies.state.request_id and turn is not None:
            turn.header.setText(name)
        odds = " · ".join(f"{member} {share:.0%}" for member, share in shares)
        self.bar.shares.setText(f"{name} speaks" + (f" ({odds})" if odds else ""))

    def new_group(self) -> None:
        """Chat → New group chat…: members from the frames and cards, and names typed in."""
        dialog = GroupDialog(self.w)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.start_group(dialog.members())

    def start_group(self, members: list[Member]) -> None:
        """A new chat whose frame is a group of ``members`` (one clear line when it cannot be)."""
        base = self.w.template if not self.w.template.members else load_template(DEFAULT_TEMPLATE)
        try:
            template = group_template(members, base)
        except BasechatError as exc:
            self.w.statusBar().showMessage(str(exc), 10000)
            return
        self.w.chats.new_chat()
        self.w.template = template
        self.w.frame.show_template(template)
        self.w.chats.show_greeting()
        self.follow_frame()


class GroupDialog(QDialog):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("New group chat")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Characters from your frames and cards:"))
        self.list = QListWidget()
        for name in available_templates():
            item = QListWidgetItem(name)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        layout.addWidget(self.list)
        layout.addWidget(
            QLabel("More characters (Name, Name=description or a card's name, separated by commas):")
        )
        self.more = QLineEdit()
        self.more.setAccessibleName("More characters")
        layout.addWidget(self.more)
        answer = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(answer.Ok | answer.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def members(self) -> list[Member]:
        chosen = [self.list.item(i).text() for i in range(self.list.count())
                  if self.list.item(i).checkState() == Qt.CheckState.Checked]  # fmt: skip
        return [member_of(load_template(name)) for name in chosen] + members_from(self.more.text())
