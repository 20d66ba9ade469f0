"""A small live plot of the last values of one figure, drawn with QPainter."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class Sparkline(QWidget):
    """`add(value)` appends (None leaves a gap); the y-axis spans 0..max(floor_max, values)."""

    def __init__(self, parent: QWidget | None = None, *, points: int = 120, floor_max: float = 1.0,
                 color: str = "#3a7bd5", bars: bool = False) -> None:
        super().__init__(parent)
        self.values: deque[float | None] = deque(maxlen=points)
        self.floor_max = floor_max
        self.color = QColor(color)
        self.bars = bars
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(140, 28)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(60, 22)

    def add(self, value: float | None) -> None:
        self.values.append(value)
        self.update()

    def clear(self) -> None:
        self.values.clear()
        self.update()

    def top(self) -> float:
        return max([self.floor_max] + [v for v in self.values if v is not None])

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(1, 2, -1, -2)
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Midlight), 1))
        p.drawLine(r.bottomLeft(), r.bottomRight())
        if not self.values:
            return
        top, n = self.top(), self.values.maxlen or len(self.values)
        step = r.width() / max(n - 1, 1)
        x0 = r.right() - step * (len(self.values) - 1)

        def y(v: float) -> float:
            return r.bottom() - (v / top) * r.height() if top > 0 else r.bottom()

        if self.bars:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(self.color)
            width = max(2.0, min(step * 0.7, 10.0))
            for i, v in enumerate(self.values):
                if v is not None:
                    x = x0 + i * step
                    p.drawRect(QRectF(x - width / 2, y(v), width, r.bottom() - y(v)))
            return
        path, pen_down = QPainterPath(), False
        for i, v in enumerate(self.values):
            if v is None:
                pen_down = False
                continue
            pt = QPointF(x0 + i * step, y(v))
            if pen_down:
                path.lineTo(pt)
            else:
                path.moveTo(pt)
                pen_down = True
        p.setPen(QPen(self.color, 1.6))
        p.drawPath(path)
        last = next((v for v in reversed(self.values) if v is not None), None)
        if last is not None and self.values[-1] is not None:
            p.setBrush(self.color)
            p.drawEllipse(QPointF(r.right(), y(last)), 2.2, 2.2)
