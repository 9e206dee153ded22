"""The frame panel's Steps tab: the message plan's steps (scaffold/plan.py) for this chat, each
with its switch; what a switch changes shows at once in the inspector's plan below."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.scaffold.plan import STEPS

_NAME = Qt.ItemDataRole.UserRole


class StepsPanel(QWidget):
    toggled = Signal()  # a step was switched on or off by the person

    def __init__(self) -> None:
        super().__init__()
        self.list = QListWidget()
        self.list.setAccessibleName("Message plan steps")
        for step in STEPS:
            item = QListWidgetItem(step.label)
            item.setData(_NAME, step.name)
            item.setToolTip(f"'{step.name}' in a template's steps_off switches it off")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.list.addItem(item)
        self.list.itemChanged.connect(lambda _item: self.toggled.emit())
        layout = QVBoxLayout(self)
        about = QLabel("What Basechat does to each message in this chat. Unticked steps are skipped.")
        about.setWordWrap(True)
        layout.addWidget(about)
        layout.addWidget(self.list)

    def show_steps_off(self, off: tuple[str, ...]) -> None:
        self.list.blockSignals(True)
        for row in range(self.list.count()):
            item = self.list.item(row)
            on = item.data(_NAME) not in off
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)

    def steps_off(self, kept: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The unticked steps, after ``kept`` (names this list does not show: a newer frame's)."""
        items = [self.list.item(row) for row in range(self.list.count())]
        shown = {item.data(_NAME) for item in items}
        off = [item.data(_NAME) for item in items if item.checkState() != Qt.CheckState.Checked]
        return tuple(name for name in kept if name not in shown) + tuple(off)
