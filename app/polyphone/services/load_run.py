"""Many calls at once from one process, for load-testing an agent (`polyphone call --concurrency N`).

Each call has its own source (the plan's file, or silence) and its own sink (the plan's
recording, numbered per call, or nothing). What "audio missed its deadlines"
means here, measured per call and for the process:

  send     a 20 ms frame handed to the encoder more than 20 ms after it was due
           (`PacedSource.late_frames`): the caller's audio would stutter;
  receive  a gap of more than 60 ms between two frames from the gateway, whose
           agents send without pause (`gaps_over_60ms`): the agent's audio would;
  loop     the event loop's lag, sampled every 100 ms (p99 and worst).

The load is carried when, over the whole run, no more than 1 % of frames were
late on either side and the loop's p99 lag stayed under 20 ms (one frame).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from av import AudioFrame

from ..audio.files import NullSink, WavSink
from ..engine.call import Call, CallResult
from ..engine.events import CallState, Event, StateChanged
from ..engine.request import CallRequest
from .headless import Plan, file_media, hang_up_when_due, sample_loop_lag

GAP_S = 0.06
LATE_SHARE = 0.01
LOOP_P99_MS = 20.0


class GapCounter:
    """Wraps a sink: counts frames and the gaps between their arrivals."""

    def __init__(self, sink: NullSink | WavSink) -> None:
        self.sink = sink
        self.last: float | None = None
        self.intervals = 0
        self.gaps = 0
        self.worst_s = 0.0
        original = sink.on_frame

        def on_frame(frame: AudioFrame) -> None:
            now = time.monotonic()
            if self.last is not None:
                gap = now - self.last
                self.intervals += 1
                self.gaps += gap > GAP_S
                self.worst_s = max(self.worst_s, gap)
            self.last = now
            original(frame)

        sink.on_frame = on_frame  # type: ignore[method-assign]


def deadlines_met(late_share: float, gap_share: float, loop_p99_s: float | None) -> bool:
    """The criterion above: the load was carried."""
    return late_share <= LATE_SHARE and gap_share <= LATE_SHARE and (loop_p99_s or 0.0) * 1000 < LOOP_P99_MS


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one(index: int, request: CallRequest, plan: Plan) -> dict[str, Any]:
    record = None
    if plan.record:
        path = Path(plan.record)
        record = path.with_name(f"{path.stem}-{index}{path.suffix or '.wav'}")
    source, sink = file_media(plan, record=str(record) if record else "")
    counter = GapCounter(sink)
    connected = asyncio.Event()

    def listener(event: Event) -> None:
        if isinstance(event, StateChanged) and event.state is CallState.CONNECTED:
            connected.set()

    call = Call(request, source, counter.sink, listener)
    ender = asyncio.ensure_future(hang_up_when_due(call, connected, source, plan))
    try:
        result: CallResult = await call.run()
    finally:
        ender.cancel()
    return {"call": index, "result": result, "recording": str(record) if record else None,
            "send": {"frames": source.frames_sent, "late_frames": source.late_frames,
                     "max_late_ms": round(source.max_late_s * 1000, 1)},
            "receive": {"intervals": counter.intervals, "gaps_over_60ms": counter.gaps,
                        "worst_gap_ms": round(counter.worst_s * 1000, 1)}}


async def run_many(n: int, make_request: Callable[[int], CallRequest], plan: Plan) -> tuple[list[dict], dict]:
    """Runs `n` calls at once; returns the per-call entries and the process's figures."""
    lags: list[float] = []
    sampler = asyncio.ensure_future(sample_loop_lag(lags, every=0.1))
    try:
        calls = await asyncio.gather(*(one(i + 1, make_request(i), plan)
                                       for i in range(n)))
    finally:
        sampler.cancel()
    return list(calls), aggregate(calls, lags)


def aggregate(calls: list[dict], lags: list[float]) -> dict[str, Any]:
    results: list[CallResult] = [c["result"] for c in calls]
    failures: dict[str, int] = {}
    for r in results:
        if r.error is not None:
            failures[r.error.kind.value] = failures.get(r.error.kind.value, 0) + 1
    setups = [r.timings_ms["first_audio"] or r.timings_ms["ice_connected"] for r in results
              if r.connected and (r.timings_ms["first_audio"] or r.timings_ms["ice_connected"])]
    frames = sum(c["send"]["frames"] for c in calls)
    late = sum(c["send"]["late_frames"] for c in calls)
    intervals = sum(c["receive"]["intervals"] for c in calls)
    gaps = sum(c["receive"]["gaps_over_60ms"] for c in calls)
    p99 = percentile(lags, 0.99)
    late_share = late / frames if frames else 0.0
    gap_share = gaps / intervals if intervals else 0.0
    return {
        "calls": len(calls), "connected": sum(r.connected for r in results), "failures": failures,
        "setup_ms": {"median": round(statistics.median(setups), 1) if setups else None,
                     "p95": round(percentile(setups, 0.95), 1) if setups else None},
        "send_late_share": round(late_share, 4), "receive_gap_share": round(gap_share, 4),
        "loop_lag_ms": {"p99": round(p99 * 1000, 1) if p99 is not None else None,
                        "max": round(max(lags) * 1000, 1) if lags else None},
        "deadlines_met": deadlines_met(late_share, gap_share, p99),
    }
