"""Light, dark or the system's look: the Fusion style, a palette, and resources/styles/polyphone.qss."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from ..paths import resource

_DARK = {
    QPalette.ColorRole.Window: "#25272b", QPalette.ColorRole.WindowText: "#e8e8ea",
    QPalette.ColorRole.Base: "#1c1d20", QPalette.ColorRole.AlternateBase: "#2b2d31",
    QPalette.ColorRole.Text: "#e8e8ea", QPalette.ColorRole.Button: "#30333a",
    QPalette.ColorRole.ButtonText: "#e8e8ea", QPalette.ColorRole.Highlight: "#3a7bd5",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#30333a",
    QPalette.ColorRole.ToolTipText: "#e8e8ea", QPalette.ColorRole.PlaceholderText: "#8a8f98",
    QPalette.ColorRole.Mid: "#55585f", QPalette.ColorRole.Midlight: "#3b3e45",
    QPalette.ColorRole.Link: "#7fb0ff",
}
_LIGHT = {
    QPalette.ColorRole.Window: "#f4f5f7", QPalette.ColorRole.WindowText: "#1f2328",
    QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f0f2f5",
    QPalette.ColorRole.Text: "#1f2328", QPalette.ColorRole.Button: "#eceef1",
    QPalette.ColorRole.ButtonText: "#1f2328", QPalette.ColorRole.Highlight: "#2f6fd0",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#ffffff",
    QPalette.ColorRole.ToolTipText: "#1f2328", QPalette.ColorRole.PlaceholderText: "#80868f",
    QPalette.ColorRole.Mid: "#b8bcc4", QPalette.ColorRole.Midlight: "#dde0e5",
    QPalette.ColorRole.Link: "#2f6fd0",
}


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def palette_for(theme: str) -> QPalette:
    dark = theme == "dark" or (theme == "system" and system_is_dark())
    pal = QPalette()
    for role, color in (_DARK if dark else _LIGHT).items():
        pal.setColor(role, QColor(color))
        if role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                    QPalette.ColorRole.ButtonText):
            pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#8a8f98"))
    return pal


def apply_theme(app: QApplication, theme: str) -> None:
    if "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    app.setPalette(palette_for(theme))
    try:
        app.setStyleSheet(resource("styles/polyphone.qss").read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
