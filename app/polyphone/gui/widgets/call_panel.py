"""Call quality: RTT, jitter, loss, bitrates and codec with live plots; the agent's turn latency
(a summary and a plot: each turn's figure shows on its reply in the conversation pane)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .accessible import named
from .sparkline import Sparkline

# key, title, unit, plot floor (the smallest y-range), colour
FIGURES = (("rtt", "Round trip", "ms", 50.0, "#3a7bd5"), ("jitter", "Jitter", "ms", 10.0, "#8e5cd9"),
           ("loss", "Packet loss", "%", 2.0, "#d0433a"), ("send", "Sending", "kbit/s", 50.0, "#2e9d57"),
           ("recv", "Receiving", "kbit/s", 50.0, "#1f9bb0"))


class CallPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Call quality", parent)
        self.setAccessibleName("Call quality")
        grid = QGridLayout()
        grid.setVerticalSpacing(3)
        self.value_labels: dict[str, QLabel] = {}
        self.plots: dict[str, Sparkline] = {}
        for row, (key, title, _unit, floor, color) in enumerate(FIGURES):
            value = named(QLabel("—"), title)
            value.setMinimumWidth(90)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            plot = named(Sparkline(floor_max=floor, color=color), f"{title} over the call")
            plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)  # may shrink
            grid.addWidget(QLabel(title), row, 0)
            grid.addWidget(value, row, 1)
            grid.addWidget(plot, row, 2)
            self.value_labels[key], self.plots[key] = value, plot
        self.codec = named(QLabel("—"), "Codec")
        grid.addWidget(QLabel("Codec"), len(FIGURES), 0)
        grid.addWidget(self.codec, len(FIGURES), 1, 1, 2)
        self.audio = named(QLabel("—"), "Playout health")
        grid.addWidget(QLabel("Playout"), len(FIGURES) + 1, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.audio, len(FIGURES) + 1, 1, 1, 2)
        grid.setColumnStretch(2, 1)
        self.turn_plot = named(Sparkline(points=40, floor_max=1000.0, color="#d49a1a", bars=True),
                               "Agent turn latency plot")
        self.turn_summary = named(QLabel("Agent response time: no turns yet"), "Agent response time summary")
        for label in (self.audio, self.turn_summary):   # room for two lines in a narrow panel
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            label.setMinimumHeight(2 * label.fontMetrics().lineSpacing())
        box = QVBoxLayout(self)
        box.addLayout(grid)
        box.addWidget(self.turn_summary)
        box.addWidget(self.turn_plot)
        box.addStretch(1)
        self._last: Any = None
        self.latencies: list[float] = []

    def reset(self) -> None:
        for label in self.value_labels.values():
            label.setText("—")
        for plot in self.plots.values():
            plot.clear()
        self.codec.setText("—")
        self.audio.setText("—")
        self.turn_plot.clear()
        self.latencies = []
        self.turn_summary.setText("Agent response time: no turns yet")
        self._last = None

    def add_stats(self, s: Any) -> None:
        loss = self._interval_loss(s)
        figures = {"rtt": s.rtt_ms, "jitter": s.jitter_ms, "loss": loss, "send": s.send_kbps,
                   "recv": s.recv_kbps}
        for key, _title, unit, _floor, _color in FIGURES:
            value = figures[key]
            self.plots[key].add(value)
            self.value_labels[key].setText("—" if value is None else
                                           f"{value:.1f} {unit}" if key == "loss" else f"{value:.0f} {unit}")
        self.codec.setText(s.codec or "—")
        self._last = s

    def _interval_loss(self, s: Any) -> float | None:
        prev = self._last
        if prev is None:
            total = s.packets_received + s.packets_lost
            return 100.0 * s.packets_lost / total if total else None
        lost = max(0, s.packets_lost - prev.packets_lost)
        got = max(0, s.packets_received - prev.packets_received)
        return 100.0 * lost / (lost + got) if lost + got else 0.0

    def add_turn(self, turn: int, latency_ms: float) -> None:
        self.latencies.append(latency_ms)
        self.turn_plot.add(latency_ms)
        ordered = sorted(self.latencies)
        median = ordered[len(ordered) // 2]
        self.turn_summary.setText(f"Agent response time: last {latency_ms:.0f} ms, median {median:.0f} ms, "
                                  f"worst {ordered[-1]:.0f} ms over {len(ordered)} turn(s)")

    def set_audio_stats(self, a: Any) -> None:
        self.audio.setText(f"buffer {a.playout_buffer_ms:.0f} ms (target {a.playout_target_ms:.0f}), "
                           f"underruns {a.playout_underruns}, concealed {a.concealed_ms:.0f} ms, "
                           f"mic dropped {a.capture_dropped_ms:.0f} ms")
