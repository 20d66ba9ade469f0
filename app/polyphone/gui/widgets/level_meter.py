"""A horizontal level meter, -60..0 dBFS, drawn with QPainter."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DBFS = -60.0
GREEN, AMBER, RED = QColor("#2e9d57"), QColor("#d49a1a"), QColor("#d0433a")


class LevelMeter(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_dbfs = -120.0
        self.speaking = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(160, 12)

    def set_level(self, dbfs: float, speaking: bool = False) -> None:
        if abs(dbfs - self.level_dbfs) >= 0.5 or speaking != self.speaking:
            self.level_dbfs, self.speaking = dbfs, speaking
            self.update()

    def fraction(self) -> float:
        return min(max((self.level_dbfs - FLOOR_DBFS) / -FLOOR_DBFS, 0.0), 1.0)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        back = self.palette().color(QPalette.ColorRole.Base)
        p.setPen(self.palette().color(QPalette.ColorRole.Mid))
        p.setBrush(back)
        p.drawRoundedRect(r, 3, 3)
        f = self.fraction()
        if f > 0:
            color = RED if self.level_dbfs > -3 else AMBER if self.level_dbfs > -12 else GREEN
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(r.adjusted(1.5, 1.5, -1.5, -1.5).adjusted(0, 0, -(r.width() - 3) * (1 - f), 0),
                              2, 2)
