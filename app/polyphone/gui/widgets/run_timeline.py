"""A scripted run, live: the caller's waveform above the agent's, turn marks, latency spans.

Fed the runner's events (runs.events): `WaveChunk` peaks every 20 ms, `TurnMark`
edges, `TurnResult` rows, `Said` utterances (their words at their start, in their lane).
The x-axis spans the run so far (at least `MIN_SPAN_S`);
each pixel column draws the loudest chunk under it. Each measured turn shades the
gap from the caller's end of speech to the agent's reply on the agent's lane and
writes the milliseconds over it. Repaints are throttled to about 30 a second.
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...runs.events import Said, TurnMark, TurnResult, WaveChunk
from .accessible import named

MIN_SPAN_S = 20.0
MAX_CHUNKS = 30 * 60 * 50   # 30 minutes of 20 ms chunks
CALLER, AGENT = QColor("#2b6cb0"), QColor("#2f855a")
MARK_COLOURS = {"caller_start": CALLER, "caller_end": CALLER, "barge_in": QColor("#c53030"),
                "agent_start": AGENT, "agent_end": AGENT}


class RunTimeline(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chunks: deque[tuple[float, float, float]] = deque(maxlen=MAX_CHUNKS)
        self.marks: list[TurnMark] = []
        self.turns: list[TurnResult] = []
        self.said: list[Said] = []
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._repaint)
        self._timer.start()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        named(self, "Run timeline", "The caller's audio above the agent's, with each turn's latency")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(640, 180)

    def clear(self) -> None:
        self.chunks.clear()
        self.marks.clear()
        self.turns.clear()
        self.said.clear()
        self._dirty = True

    def add(self, event: object) -> None:
        if isinstance(event, WaveChunk):
            self.chunks.append((event.t, event.caller_peak, event.agent_peak))
        elif isinstance(event, TurnMark):
            self.marks.append(event)
        elif isinstance(event, TurnResult):
            self.turns.append(event)
        elif isinstance(event, Said):
            self.said.append(event)
        else:
            return
        self._dirty = True

    def _repaint(self) -> None:
        if self._dirty:
            self._dirty = False
            self.update()

    def span(self) -> float:
        return max(MIN_SPAN_S, self.chunks[-1][0] if self.chunks else 0.0)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        lane = (h - 16) / 2
        span = self.span()

        def x_of(t: float) -> float:
            return 4 + (w - 8) * t / span
        self._waves(p, w, lane, x_of)
        self._spans(p, lane, x_of)
        self._words(p, w, lane, x_of)
        for m in self.marks:
            x = x_of(m.t)
            p.setPen(QPen(MARK_COLOURS.get(m.kind, CALLER), 1, Qt.PenStyle.DashLine))
            top = 0 if m.kind.startswith("caller") or m.kind == "barge_in" else lane + 8
            p.drawLine(int(x), int(top), int(x), int(top + lane))
        p.setPen(self.palette().color(QPalette.ColorRole.Text))
        p.drawText(6, 12, "caller")
        p.drawText(6, int(lane + 20), "agent")
        p.drawText(QRectF(0, h - 14, w - 4, 14), Qt.AlignmentFlag.AlignRight, f"{self.span():.0f} s")
        p.end()

    def _waves(self, p: QPainter, w: int, lane: float, x_of) -> None:
        columns: dict[int, list[float]] = {}
        for t, caller, agent in self.chunks:
            col = columns.setdefault(int(x_of(t)), [0.0, 0.0])
            col[0], col[1] = max(col[0], caller), max(col[1], agent)
        for (base, colour, i) in ((lane / 2, CALLER, 0), (lane + 8 + lane / 2, AGENT, 1)):
            p.setPen(QPen(colour, 1))
            for x, peaks in columns.items():
                half = max(0.5, peaks[i] * lane / 2)
                p.drawLine(x, int(base - half), x, int(base + half))

    def _words(self, p: QPainter, w: int, lane: float, x_of) -> None:
        """Each utterance's words from its start to the next one in its lane, elided to fit."""
        metrics = QFontMetrics(p.font())
        for who, colour, y in (("caller", CALLER, lane - 4), ("agent", AGENT, 2 * lane + 4)):
            said = sorted((s for s in self.said if s.who == who), key=lambda s: s.start)
            p.setPen(colour)
            for i, s in enumerate(said):
                x = x_of(s.start)
                end = x_of(said[i + 1].start) if i + 1 < len(said) else w
                text = metrics.elidedText(s.text, Qt.TextElideMode.ElideRight, int(max(0.0, end - x - 4)))
                if text:
                    p.drawText(int(x), int(y), text)

    def _spans(self, p: QPainter, lane: float, x_of) -> None:
        for turn in self.turns:
            if turn.response_latency_ms is None:
                continue
            x0, x1 = x_of(turn.caller_end_s), x_of(turn.caller_end_s + turn.response_latency_ms / 1000)
            p.fillRect(QRectF(x0, lane + 8, max(1.0, x1 - x0), lane), QColor(237, 137, 54, 90))
            p.setPen(self.palette().color(QPalette.ColorRole.Text))
            p.drawText(QRectF(x0, lane + 8, max(60.0, x1 - x0), 14), Qt.AlignmentFlag.AlignLeft,
                       f"{turn.response_latency_ms:.0f} ms")
