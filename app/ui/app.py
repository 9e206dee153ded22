"""Starting the desktop app."""

from __future__ import annotations

import os
import sys


def display_available() -> bool:
    """Qt aborts the process when it cannot reach a display; find out first."""
    if sys.platform in ("darwin", "win32"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal", "vnc")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_gui(model: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from app.models.default import DEFAULT_MODEL_ID
    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Basechat")
    app.setOrganizationName("Basechat")
    app.setDesktopFileName("basechat")
    window = MainWindow(ChatStore())
    window.show()
    window.load_model(model or str(window.settings.value("model", DEFAULT_MODEL_ID)))
    return app.exec()
