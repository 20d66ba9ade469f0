"""How late the event loop runs: a precise periodic timer measuring its own lateness.

Under qasync the Qt event loop and the asyncio loop are one loop, so anything
that blocks it (a slow callback, a blocking call) shows up here as lag: the
UI freezes for that long. `max_ms` is the worst since `reset()`.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal


class LoopLagMonitor(QObject):
    lag = Signal(float, float)   # the last second's worst (ms), the worst since reset (ms)

    def __init__(self, parent: QObject | None = None, interval_ms: int = 20) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.max_ms = 0.0
        self.window_max_ms = 0.0
        self.samples = 0
        self._last = 0.0
        self._window_start = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = self._window_start = time.monotonic()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def reset(self) -> None:
        self.max_ms = self.window_max_ms = 0.0
        self.samples = 0

    def _tick(self) -> None:
        now = time.monotonic()
        late_ms = max(0.0, (now - self._last) * 1000.0 - self.interval_ms)
        self._last = now
        self.samples += 1
        self.max_ms = max(self.max_ms, late_ms)
        self.window_max_ms = max(self.window_max_ms, late_ms)
        if now - self._window_start >= 1.0:
            self.lag.emit(round(self.window_max_ms, 1), round(self.max_ms, 1))
            self.window_max_ms = 0.0
            self._window_start = now
