"""Makes the app icon in the sizes each OS wants from resources/icons/polyphone.svg.

    .venv/bin/python build/make_icons.py [--out DIR]     (default: resources/icons)

Writes, under DIR:
  hicolor/NxN/apps/polyphone.png   Linux (freedesktop icon theme), N in HICOLOR_SIZES
  polyphone.ico                    Windows (PNG-coded entries, 16-256 px)
  polyphone.icns                   macOS (PNG-coded entries, 16-1024 px)

Reproducible: the SVG is rendered by Qt's SVG renderer (offscreen, no display
needed) and the PNG, ICO and ICNS files are written here byte by byte (no
timestamps, fixed zlib level, unfiltered rows). The outputs are committed;
tests/unit/test_app_icons.py re-runs this and compares the decoded pixels (zlib
builds differ in the bytes they write for the same rows).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "polyphone.svg"
NAME = "polyphone"

HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types with PNG data, by pixel size (the @2x types share sizes).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"icp6", 64), (b"ic12", 64),
    (b"ic07", 128), (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512),
    (b"ic10", 1024),
)


def render_rgba(size: int) -> bytes:
    """The SVG rendered at size x size: straight (not premultiplied) RGBA, row by row."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    stride = rgba.bytesPerLine()
    data = bytes(rgba.constBits())
    return b"".join(data[y * stride:y * stride + size * 4] for y in range(size))


def png(size: int, rgba: bytes) -> bytes:
    """A minimal, deterministic PNG (8-bit RGBA, no ancillary chunks)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + rgba[y * size * 4:(y + 1) * size * 4] for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def ico(images: dict[int, bytes]) -> bytes:
    """A Windows .ico whose entries are PNGs (supported since Windows Vista)."""
    sizes = sorted(images)
    out = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    for size in sizes:
        dim = 0 if size >= 256 else size  # 0 means 256
        out += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(images[size]), offset)
        offset += len(images[size])
    return out + b"".join(images[size] for size in sizes)


def icns(images: dict[int, bytes]) -> bytes:
    """A macOS .icns whose elements are PNGs."""
    body = b"".join(kind + struct.pack(">I", 8 + len(images[size])) + images[size]
                    for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def make(out: Path) -> list[Path]:
    sizes = sorted(set(HICOLOR_SIZES) | set(ICO_SIZES) | {s for _, s in ICNS_TYPES})
    pngs = {size: png(size, render_rgba(size)) for size in sizes}
    written = []
    for size in HICOLOR_SIZES:
        path = out / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pngs[size])
        written.append(path)
    for path, data in ((out / f"{NAME}.ico", ico({s: pngs[s] for s in ICO_SIZES})),
                       (out / f"{NAME}.icns", icns(pngs))):
        path.write_bytes(data)
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SVG.parent, help="where to write (default: %(default)s)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication(sys.argv[:1])  # noqa: F841  (Qt's painting needs an application)
    for path in make(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
