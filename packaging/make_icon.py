"""Draw Basechat's icon (a speech bubble on a rounded square) into resources/icons/.

Run once when the design changes; the PNGs are committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPainterPath, QPolygonF

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"


def draw(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 256
    p.setBrush(QColor("#2f6fde"))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(QRectF(8 * s, 8 * s, 240 * s, 240 * s), 48 * s, 48 * s)
    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(44 * s, 52 * s, 168 * s, 120 * s), 36 * s, 36 * s)
    tail = QPolygonF([QPointF(80 * s, 160 * s), QPointF(68 * s, 206 * s), QPointF(124 * s, 166 * s)])
    bubble.addPolygon(tail)
    p.setBrush(QColor("white"))
    p.drawPath(bubble.simplified())
    p.setPen(QColor("#2f6fde"))
    font = QFont("DejaVu Sans", int(80 * s))
    font.setBold(True)
    p.setFont(font)
    p.drawText(QRectF(44 * s, 52 * s, 168 * s, 120 * s), Qt.AlignmentFlag.AlignCenter, "B")
    p.end()
    return image


if __name__ == "__main__":
    app = QGuiApplication(sys.argv[:1])
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (256, 512):
        draw(size).save(str(OUT / f"basechat-{size}.png"))
    draw(256).save(str(OUT / "basechat.png"))
    print("icons written to", OUT)
