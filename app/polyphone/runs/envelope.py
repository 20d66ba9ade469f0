"""A call's waveform envelope, compact enough for report.json: the loudest peak per 50 ms.

Fed the same values the runner's `WaveChunk`s carry (seconds since connected, the
caller's and the agent's peak over 20 ms, 0..1). Memory is bounded: at most
`MAX_BUCKETS` buckets a side (30 minutes at 50 ms, 36,000 floats a side, under
0.5 MB in report.json); audio after that is not kept (the recording still has it).
"""

from __future__ import annotations

from typing import Any

STEP_S = 0.05
MAX_BUCKETS = 36_000   # 30 minutes at STEP_S


class Envelope:
    def __init__(self, step_s: float = STEP_S, max_buckets: int = MAX_BUCKETS) -> None:
        self.step_s = step_s
        self.max_buckets = max_buckets
        self.caller: list[float] = []
        self.agent: list[float] = []

    def add(self, t: float, caller_peak: float, agent_peak: float) -> None:
        """One chunk at `t` s since connected; a chunk past the cap is dropped."""
        i = max(0, int(t / self.step_s + 1e-9))
        if i >= self.max_buckets:
            return
        if i >= len(self.caller):   # a gap (no chunk for a while) reads as silence
            grow = i + 1 - len(self.caller)
            self.caller.extend([0.0] * grow)
            self.agent.extend([0.0] * grow)
        self.caller[i] = max(self.caller[i], round(caller_peak, 3))
        self.agent[i] = max(self.agent[i], round(agent_peak, 3))

    def to_json(self) -> dict[str, Any] | None:
        """{"step_s", "caller", "agent"}, or None when nothing was fed."""
        if not self.caller:
            return None
        return {"step_s": self.step_s, "caller": list(self.caller), "agent": list(self.agent)}
