"""What blocked the event loop: a thread that samples the loop thread's stack while it is late.

`StallWatch(last_tick)` polls every few milliseconds; `last_tick()` returns the monotonic
time the loop last proved it was running (LoopLagMonitor._last). While the loop is later
than `threshold_ms`, the loop thread's stack is sampled. A stall with the loop thread
blocked in a system call (a write held up by the kernel's writeback, an fsync) shows that
call's Python stack; a stall with no samples means some thread held the GIL throughout
(the sampler could not run either). `report()` is for an assertion's message.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from typing import Callable


class StallWatch:
    def __init__(self, last_tick: Callable[[], float], threshold_ms: float = 60.0,
                 period_s: float = 0.005, thread: threading.Thread | None = None) -> None:
        self._last_tick = last_tick
        self._threshold = threshold_ms / 1000.0
        self._period = period_s
        self._ident = (thread or threading.main_thread()).ident
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._run, name="stall-watch", daemon=True)
        # per stall (keyed by the tick it started after): its length and sampled stacks
        self.stalls: dict[float, tuple[float, collections.Counter[str]]] = {}

    def __enter__(self) -> StallWatch:
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            last = self._last_tick()
            late = time.monotonic() - last
            if not last or late < self._threshold:
                continue
            frames = sys._current_frames()
            frame = frames.get(self._ident)
            stack = "".join(traceback.format_stack(frame)[-8:]) if frame is not None else "?"
            names = {t.ident: t.name for t in threading.enumerate()}
            others = [f"  [{names.get(ident, ident)}] "
                      + traceback.format_stack(f)[-1].strip().replace("\n", " | ")
                      for ident, f in frames.items()
                      if ident not in (self._ident, threading.get_ident())]
            stack += "other threads, innermost frame:\n" + "\n".join(sorted(others)) + "\n"
            _, seen = self.stalls.get(last, (0.0, collections.Counter()))
            seen[stack] += 1
            self.stalls[last] = (late * 1000.0, seen)

    def report(self) -> str:
        if not self.stalls:
            return "no stall was sampled (a thread holding the GIL throughout leaves no sample)"
        late_ms, seen = max(self.stalls.values(), key=lambda s: s[0])
        stack, count = seen.most_common(1)[0]
        others = [f"{ms:.0f} ms" for ms, _ in sorted(self.stalls.values(), key=lambda s: -s[0])[1:6]]
        return (f"longest stall sampled: >= {late_ms:.0f} ms; the loop thread was in this "
                f"{count} of {sum(seen.values())} samples:\n{stack}"
                + (f"other stalls: {', '.join(others)}" if others else ""))
