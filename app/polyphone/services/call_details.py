"""What one call leaves behind besides its recording: the figures a repro bundle needs later
(stats each second, the log, quality warnings, the devices), the quality monitor's warnings
as they rise and clear, and the turn latencies for the history row."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from ..engine.events import LogLine, QualityWarning, StatsSample, TurnLatency
from ..engine.quality import QualityMonitor

MAX_DETAILS = 7200   # stats seconds / log lines kept per call for its repro bundle (2 h of stats)


class CallDetails:
    def __init__(self, redact: Callable[[str], str], input_device: str = "", output_device: str = "") -> None:
        self.redact = redact
        self.quality = QualityMonitor()
        self.turns: list[float] = []
        self.t0 = time.monotonic()
        self.data: dict[str, Any] = {
            "stats": [], "log": [], "warnings": [],
            "devices": {"input": input_device or "system default",
                        "output": output_device or "system default"}}

    def feed(self, event: Any, muted: bool) -> list[QualityWarning]:
        """Keeps what the event adds; returns the quality warnings it raised or cleared."""
        if isinstance(event, TurnLatency):
            self.turns.append(event.latency_ms)
        self._keep(event)
        self.quality.muted = muted
        warnings = self.quality.feed(event)
        for warning in warnings:
            self._keep(warning)
        return warnings

    def _keep(self, event: Any) -> None:
        d, t = self.data, round(getattr(event, "t", time.monotonic()) - self.t0, 3)
        if isinstance(event, StatsSample) and len(d["stats"]) < MAX_DETAILS:
            d["stats"].append({"t": t, **_fields(event)})
        elif isinstance(event, LogLine) and len(d["log"]) < MAX_DETAILS:
            d["log"].append({"t": t, "level": event.level, "source": event.source,
                             "text": self.redact(event.text)})
        elif isinstance(event, QualityWarning):
            d["warnings"].append({"t": t, **_fields(event)})


def _fields(event: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(event).items() if k != "t"}
