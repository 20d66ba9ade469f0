"""One line of the event log, and a `logging` handler that feeds Python log records into it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

LEVELS = ("debug", "info", "warning", "error")


def wall_time(monotonic_t: float) -> float:
    """Unix time of an event stamped with time.monotonic()."""
    return time.time() - (time.monotonic() - monotonic_t)


@dataclass(frozen=True)
class LogEntry:
    wall: float      # Unix time
    level: str       # debug | info | warning | error
    source: str      # signaling | ice | peer | call | audio | app | ...
    text: str        # already redacted

    def format(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.wall))
        return f"{stamp}.{int(self.wall * 1000) % 1000:03d}  {self.level:<7} {self.source:<9} {self.text}"

    def rank(self) -> int:
        return LEVELS.index(self.level) if self.level in LEVELS else 1


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 1


class LineLogHandler(logging.Handler):
    """Hands each record to `emit_line(level, source, text)` (which must be thread-safe)."""

    def __init__(self, emit_line: Callable[[str, str, str], None]) -> None:
        super().__init__()
        self._emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "debug" if record.levelno < logging.INFO else \
                "info" if record.levelno < logging.WARNING else \
                "warning" if record.levelno < logging.ERROR else "error"
            source = record.name.rsplit(".", 1)[-1] if record.name.startswith("polyphone.") else record.name
            self._emit_line(level, source, record.getMessage()[:500])
        except Exception:
            self.handleError(record)
