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
    if os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        missing = _xcb_plugin_problem()
        if missing:
            package = _debian_package(missing)
            return f"Qt's X11 plugin cannot load ({missing}; e.g. 'sudo apt install {package}')"
    return None


def _xcb_plugin_problem() -> str | None:
    """Load Qt's xcb platform plugin the way Qt would: any system library it lacks shows up
    here as one line, instead of Qt aborting the process later."""
    import ctypes
    from pathlib import Path

    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    if not plugin.exists():
        return None  # a build laid out otherwise (a packaged app): let Qt speak for itself
    try:
        ctypes.CDLL(str(plugin))
    except OSError as exc:  # "/usr/lib/…/libxcb-icccm.so.4: cannot open shared object file: …"
        library, _, why = str(exc).partition(":")
        return f"{Path(library.strip()).name}: {why.split(':')[0].strip() or 'cannot be loaded'}"
    return None


def _debian_package(missing: str) -> str:
    """libxcb-icccm.so.4 → libxcb-icccm4 (Debian and Ubuntu name them so)."""
    name = missing.split(":")[0]
    stem, _, version = name.partition(".so.")
    return f"{stem.replace('_', '-')}{version.split('.')[0]}" if version else stem


def run_gui(model: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from app.errors import BasechatError
    from app.models.default import DEFAULT_MODEL_ID
    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Basechat")
    app.setOrganizationName("Basechat")
    app.setDesktopFileName("basechat")
    from PySide6.QtGui import QIcon

    from app.paths import resources_dir

    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "basechat.png")))
    try:
        store = ChatStore()
    except BasechatError as exc:  # a busy, newer or unwritable history: say so, change nothing
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Basechat", str(exc))
        return 1
    window = MainWindow(store)
    window.show()
    window.load_model(model or str(window.settings.value("model", DEFAULT_MODEL_ID)))
    return app.exec()
