"""Start Basechat on a virtual screen, hold a short real conversation, save screenshots here.

Run with ``make screenshots`` (uses Xvfb when installed, Qt's offscreen platform otherwise).
Uses a throw-away data folder, so your own chats are never shown.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
QUESTIONS = ["What is the capital of France?", "Name the three primary colours."]


def main() -> int:
    data = Path(tempfile.mkdtemp(prefix="basechat-shots-"))
    os.environ["BASECHAT_DATA_DIR"] = str(data)
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.models.default import ensure_default_model
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.ui.models_dialog import ModelsDialog

    ensure_default_model()
    app = QApplication(sys.argv[:1])
    settings = QSettings(str(data / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("sampling/temperature", 0.0)
    window = MainWindow(ChatStore(), settings)
    window.resize(1200, 760)
    window.show()
    window.load_model("gemma3-270m")
    pending = list(QUESTIONS)

    def step() -> None:
        if not window.model_info or window.replies.streaming is not None:
            QTimer.singleShot(200, step)
            return
        if pending:
            window.composer.editor.setPlainText(pending.pop(0))
            window.composer._send()
            QTimer.singleShot(200, step)
            return
        window.frame_dock.show()
        window.frames.inspect_prompt()
        QTimer.singleShot(1500, finish)

    def finish() -> None:
        window.grab().save(str(DOCS / "screenshot.png"))
        dialog = ModelsDialog(window)
        dialog.show()
        # Its estimates come once this machine is timed (the first time, in the background).
        when_idle(lambda: not getattr(dialog, "fits_shown", False),
                  lambda: (dialog.grab().save(str(DOCS / "models.png")), dialog.close(), card()))  # fmt: skip

    def card() -> None:
        """A character card imported (as dropping it on the window does), then one message."""
        window.chats.new_chat()
        window.frames.import_frame(str(card_png(data)))
        window.composer.editor.setPlainText("Where are we flying today, captain?")
        window.composer._send()
        when_idle(lambda: window.replies.streaming is not None, card_done)

    def when_idle(busy, then) -> None:
        """Call ``then`` once ``busy()`` is false, looking every 200 ms."""
        QTimer.singleShot(200, lambda: when_idle(busy, then) if busy() else then())

    def card_done() -> None:
        window.frames.inspect_prompt()
        QTimer.singleShot(1500, lambda: (window.grab().save(str(DOCS / "card.png")), lorebook()))

    def lorebook() -> None:
        """The card's lorebook in the Frame panel: its entries, and what a message would fire."""
        frame = window.frame
        window.resize(1300, 880)  # the tab's editor and the inspector both in view
        frame.show_lorebook_tab()
        frame.lorebook.test_message.setText("Will the wind let us fly north today?")
        window.composer.editor.setPlainText("Will the wind let us fly north today?")
        window.frames.inspect_prompt()
        QTimer.singleShot(1500, lambda: (window.grab().save(str(DOCS / "lorebook.png")), lorebook_done()))

    def lorebook_done() -> None:
        window.resize(1200, 760)
        window.composer.editor.clear()
        window.frame.tabs.setCurrentIndex(0)
        loom()

    def loom() -> None:
        """Three alternatives written at once, the tree panel, and a reply's token view."""
        from app.scaffold import DEFAULT_TEMPLATE, load_template

        window.chats.new_chat()
        window.frames.set_template(load_template(DEFAULT_TEMPLATE))
        window.frame_dock.hide()
        window.loom.dock.show()
        settings.setValue("sampling/temperature", 0.9)
        settings.setValue("sampling/seed", 3)
        settings.setValue("loom/alternatives", 3)
        window.composer.editor.setPlainText("Tell me about the moon.")
        window.composer._send()
        when_idle(lambda: window.replies.streaming is not None, loom_done)

    def loom_done() -> None:
        window.loom.toggle_tokens(1)
        QTimer.singleShot(1000, lambda: (window.grab().save(str(DOCS / "loom.png")), notebook()))

    def notebook() -> None:
        """A notebook: a text continued from the cursor, three continuations, the token view."""
        window.chats.new_notebook()
        page = window.notebook.page
        page.editor.setPlainText(
            "The lighthouse keeper had not seen a ship in eleven years. Then, one foggy morning,"
        )
        page.editor.moveCursor(page.editor.textCursor().MoveOperation.End)
        window.notebook.continue_text(3)
        when_idle(lambda: bool(window.notebook.request_id), notebook_done)

    def notebook_done() -> None:
        window.notebook.toggle_tokens()
        QTimer.singleShot(1000, lambda: (window.grab().save(str(DOCS / "notebook.png")), long_chat()))

    def long_chat() -> None:
        """A 2,000-message chat (imported as ``chats import`` does), opened and scrolled up a little."""
        from app.store.export import import_json
        from app.ui.probes import long_chat_export

        window.loom.dock.hide()
        [long_id] = import_json(window.store, long_chat_export(2000))
        window.chats.open(long_id)
        bar = window.view.verticalScrollBar()
        QTimer.singleShot(800, lambda: (bar.setValue(bar.maximum() - 700), QTimer.singleShot(500, long_done)))

    def long_done() -> None:
        window.grab().save(str(DOCS / "long-chat.png"))
        window.chats.open(1)  # the first chat, in the dark
        QApplication.setPalette(dark_palette())
        QTimer.singleShot(1000, lambda: (window.grab().save(str(DOCS / "dark.png")), app.quit()))

    QTimer.singleShot(100, step)
    app.exec()
    print(f"saved screenshot, models, card, lorebook, loom, notebook, long-chat and dark .png in {DOCS}")
    return 0


def card_png(folder: Path) -> Path:
    """``example-card.json`` as a PNG card, the way cards are shared: a picture (drawn here, a
    sky-blue badge with the captain's initial) with the card in a ``chara`` text chunk."""
    import base64
    import struct
    import zlib

    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter

    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(QColor("#2f6fb5"))
    painter = QPainter(image)
    painter.setPen(QColor("white"))
    painter.setFont(QFont("DejaVu Sans", 140, QFont.Weight.Bold))
    painter.drawText(image.rect(), Qt.AlignmentFlag.AlignCenter, "M")
    painter.end()
    buffer = QBuffer(data := QByteArray())
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    png = bytes(data.data())
    body = b"chara\0" + base64.b64encode((DOCS / "example-card.json").read_bytes())
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    header_end = 8 + 25  # the signature, then the IHDR chunk
    path = folder / "captain-mira.png"
    path.write_bytes(png[:header_end] + chunk + png[header_end:])
    return path


def dark_palette():
    """A dark system palette, as a desktop in dark mode hands Qt."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    roles = QPalette.ColorRole
    for role, color in ((roles.Window, "#202124"), (roles.WindowText, "#e8eaed"), (roles.Base, "#1e1e1e"),
                        (roles.AlternateBase, "#333842"), (roles.Text, "#e8eaed"), (roles.Button, "#303134"),
                        (roles.ButtonText, "#e8eaed"), (roles.Highlight, "#3d7bd9"), (roles.Mid, "#5f6368"),
                        (roles.Midlight, "#4a4d52"), (roles.PlaceholderText, "#9aa0a6"),
                        (roles.HighlightedText, "#ffffff")):  # fmt: skip
        palette.setColor(role, QColor(color))
    return palette


if __name__ == "__main__":
    raise SystemExit(main())
