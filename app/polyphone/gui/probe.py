"""The Qt half of `polyphone --self-test`, run in a child process (cli/self_test.py).

It makes the QApplication the window would make, loads the app's SVG icon and the
style sheet, builds (without showing) a widget, and prints one JSON line on stdout:
what loaded, or `error` and `fix`. A platform plugin that cannot load makes Qt abort the
process: the parent reads that from the exit status and stderr.
"""

from __future__ import annotations

import json
import sys


def probe() -> dict:
    from .app import no_display

    why = no_display()
    if why:
        return {"error": why, "fix": "run it from your desktop session, or set "
                                     "QT_QPA_PLATFORM=offscreen to check without a display"}
    from PySide6.QtCore import qVersion
    from PySide6.QtGui import QImageReader
    from PySide6.QtWidgets import QLabel

    from ..paths import resource
    from .app import make_qapp
    from .icons import icon

    app = make_qapp()
    if icon("polyphone.svg").pixmap(32, 32).isNull():
        return {"error": "the SVG app icon does not render (Qt's SVG icon engine is missing)",
                "fix": "reinstall Polyphone: this installation is incomplete"}
    app.setStyleSheet(resource("styles/polyphone.qss").read_text(encoding="utf-8"))
    label = QLabel("Polyphone")
    label.adjustSize()
    formats = sorted(bytes(f).decode() for f in QImageReader.supportedImageFormats())
    return {"qt": qVersion(), "platform": app.platformName(),
            "image_formats": [f for f in ("png", "svg", "ico") if f in formats]}


def main() -> int:
    try:
        report = probe()
    except Exception as exc:
        report = {"error": f"{type(exc).__name__}: {exc}", "fix": ""}
    print(json.dumps(report), flush=True)
    return 1 if report.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
