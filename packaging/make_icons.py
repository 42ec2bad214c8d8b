"""Re-make the application icon: resources/icons/pneumoscan.{svg,png,ico}.

The SVG is the source; the 256 px PNG (Linux .desktop, window icon) is
rendered from it with QtSvg, and the multi-size .ico (Windows) with Pillow.
macOS needs an .icns: build it on a Mac with `iconutil` (see docs/INSTALLER.md).

Usage: QT_QPA_PLATFORM=offscreen python packaging/make_icons.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"

# A chest X-ray motif: two lungs on a dark film with a scan line.
SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>PneumoScan</title>
  <defs>
    <linearGradient id="film" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#1d2b3a"/>
      <stop offset="1" stop-color="#0b121a"/>
    </linearGradient>
    <linearGradient id="lung" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#e8f1f8"/>
      <stop offset="1" stop-color="#9fb7cc"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="44" fill="url(#film)"/>
  <rect x="122" y="40" width="12" height="70" rx="6" fill="#c9d6e2"/>
  <path d="M118 96 C 92 70, 52 92, 46 150 C 42 192, 60 214, 88 212 C 108 210, 118 196, 118 176 Z"
        fill="url(#lung)"/>
  <path d="M138 96 C 164 70, 204 92, 210 150 C 214 192, 196 214, 168 212 C 148 210, 138 196, 138 176 Z"
        fill="url(#lung)"/>
  <path d="M152 150 C 168 140, 190 150, 198 176 C 190 196, 170 200, 154 190 Z"
        fill="#f08a24" fill-opacity="0.85"/>
  <rect x="28" y="136" width="200" height="6" rx="3" fill="#f5b041" fill-opacity="0.9"/>
</svg>
"""


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    ICONS.mkdir(parents=True, exist_ok=True)
    (ICONS / "pneumoscan.svg").write_text(SVG, encoding="utf-8")
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(QByteArray(SVG.encode("utf-8")))
    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    png = ICONS / "pneumoscan.png"
    if not image.save(str(png), "PNG"):
        print(f"could not write {png}", file=sys.stderr)
        return 1
    Image.open(png).save(ICONS / "pneumoscan.ico",
                         sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    print(f"wrote pneumoscan.svg, .png and .ico to {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
