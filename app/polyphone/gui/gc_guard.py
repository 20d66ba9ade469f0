"""Python's garbage collector, run on the Qt thread only.

The cyclic collector runs in whichever thread happens to allocate when a
threshold trips: with aiortc's codec threads and qasync's executor busy during
a call, that is often not the Qt thread. A Qt object collected there is
destroyed in the wrong thread; its timers cannot be unregistered and Qt later
fires one on freed memory (a segfault, measured here with PySide6 6.11 +
qasync 0.28: 2 runs in 6 of the bridge tests crashed in
QTimerInfoList::activateTimers). So automatic collection is switched off and
this timer collects, generation by generation, on the Qt thread (the recipe
PyQt applications use for the same problem).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadGC(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = 0
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)

    def start(self, freeze: bool = True) -> None:
        """With `freeze`, everything alive now (modules, the window) moves to the permanent
        generation first, so later full collections scan only what the calls created (a full
        collection of the whole heap took ~40 ms here, longer than a frame)."""
        gc.disable()
        if freeze:
            gc.collect()
            gc.freeze()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.unfreeze()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> None:
        c0, c1, c2 = gc.get_count()
        if c0 > self.threshold[0]:
            gc.collect(0)
            self.collections += 1
            if c1 > self.threshold[1]:
                gc.collect(1)
                if c2 > self.threshold[2]:
                    gc.collect(2)
