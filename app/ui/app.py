"""Starting the desktop app."""

from __future__ import annotations

import os
import sys


def gui_unavailable_reason() -> str | None:
    """Qt aborts the whole process when it cannot open a window; find out first, in one line."""
    if sys.platform in ("darwin", "win32"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc")):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display found"
    if os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and not _has_xcb_cursor():
        return "Qt needs the system library libxcb-cursor0 (e.g. 'sudo apt install libxcb-cursor0')"
    return None


def _has_xcb_cursor() -> bool:
    from ctypes.util import find_library

    return find_library("xcb-cursor") is not None


def run_gui(model: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from app.models.default import DEFAULT_MODEL_ID
    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Basechat")
    app.setOrganizationName("Basechat")
    app.setDesktopFileName("basechat")
    from PySide6.QtGui import QIcon

    from app.paths import resources_dir

    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "basechat.png")))
    window = MainWindow(ChatStore())
    window.show()
    window.load_model(model or str(window.settings.value("model", DEFAULT_MODEL_ID)))
    return app.exec()
