"""`polyphone --exit-when-shown`: say when the window first paints, then close it.

For start-up benchmarks and smoke tests of a build (tests/bench/frozen_startup.py): the
line `polyphone: window shown` is printed on stdout when the main window receives its
first paint event, i.e. when it is on screen; the window then closes as if the person
had closed it (the app shuts down cleanly and exits 0).
"""

from __future__ import annotations

import sys
from typing import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

MARKER = "polyphone: window shown"


class FirstPaint(QObject):
    def __init__(self, widget: QWidget, then: Callable[[], object]) -> None:
        super().__init__(widget)
        self._then = then
        self.seen = False
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Paint and not self.seen:
            self.seen = True
            print(MARKER, file=sys.stdout, flush=True)
            QTimer.singleShot(0, self._then)
        return False
