"""The calls of one load-test worker process, on its asyncio loop: no Locust, no gevent here.

`WorkerCalls.prepare(options)` builds the call request once per process, through the
application layer as `polyphone run` does: a profile's URL and token (from the OS keyring, or
POLYPHONE_TOKEN, which wins when set) or a URL with POLYPHONE_TOKEN. The token is read on this
machine; it never travels in Locust's options or messages. `one_call()` then places one real
call through the engine (signaling, ICE, Opus, the receive path): the caller script, played by
`runs.runner.ScriptRunner` without recording it (transcribed only when an expectation needs
the words), or, with no script, a call that sends silence for `duration_s`, as `polyphone call
--concurrency` does. It returns the call's entries for Locust's statistics (load/outcome.py).

`Deadlines` keeps the same figures as `--concurrency` (services/load_run.py) across every call
of this process: caller frames handed to the encoder late, gaps over 60 ms in the agent's
audio, the loop's lag; `figures()` says whether the process carried its load.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config
from ..engine.events import ErrorKind
from ..errors import UserFacingError
from ..runs.caller_lines import render_all
from ..runs.runner import RunResult, ScriptRunner
from ..runs.script import Script, ScriptError, load_script
from ..services.errors import PrepError
from ..services.headless import Plan, sample_loop_lag
from ..services.load_run import GapCounter, deadlines_met, one, percentile
from ..services.local_gateway import EmbeddedGateway
from ..services.redact import Redactor
from ..services.requests import RequestBuilder, Target
from ..services.tokens import TokenVault
from .outcome import SETUP, Sample, samples

CALL_TIMEOUT_MARGIN_S = 60.0      # beyond the script's own time or the plain call's duration


class LoadSetupError(UserFacingError):
    """A worker cannot place calls at all: no target, no token, a script that does not load."""


@dataclass(frozen=True)
class Options:
    """What every worker is told (nothing secret: Locust sends these from master to workers)."""

    script: str | None = None
    profile: str | None = None
    url: str | None = None
    variant: str | None = None
    mode: str | None = None
    ca_file: str | None = None
    duration_s: float = 10.0          # a plain call (no script): how long it lasts once connected
    play: str | None = None           # and the WAV it sends (None: silence)
    fetch_ice_servers: bool = True


class Deadlines:
    """The audio's deadlines over every call of this process (see services/load_run.py)."""

    def __init__(self) -> None:
        self.frames = self.late = self.intervals = self.gaps = 0
        self.calls = self.active = self.peak_active = 0
        self.lags: list[float] = []

    def add(self, send: dict[str, Any], receive: dict[str, Any]) -> None:
        """One finished call's counts, in services/load_run.one's shape."""
        self.frames += send["frames"]
        self.late += send["late_frames"]
        self.intervals += receive["intervals"]
        self.gaps += receive["gaps_over_60ms"]

    def figures(self) -> dict[str, Any]:
        lags = self.lags[-30_000:]
        p99 = percentile(lags, 0.99)
        late_share = self.late / self.frames if self.frames else 0.0
        gap_share = self.gaps / self.intervals if self.intervals else 0.0
        return {"pid": os.getpid(), "calls": self.calls, "active": self.active,
                "peak_active": self.peak_active,
                "send_late_share": round(late_share, 4), "receive_gap_share": round(gap_share, 4),
                "loop_lag_ms": {"p99": round(p99 * 1000, 1) if p99 is not None else None,
                                "median": round(statistics.median(lags) * 1000, 1) if lags else None},
                "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "deadlines_met": deadlines_met(late_share, gap_share, p99)}


class WorkerCalls:
    def __init__(self) -> None:
        self.options = Options()
        self.script: Script | None = None
        self.deadlines = Deadlines()
        self._request: Any = None
        self._lines: Any = None
        self._transcribe = False
        self._stack = contextlib.AsyncExitStack()
        self._sampler: asyncio.Task | None = None
        self._out = Path(tempfile.gettempdir())   # ScriptRunner's folder; with record=False it writes none

    async def prepare(self, options: Options) -> None:
        """Once per process, before the first call; LoadSetupError says why calls cannot start."""
        self.options = options
        if not options.url and not options.profile:
            raise LoadSetupError("A load test needs a target: a profile or a URL.",
                                 "Give --profile NAME or --url wss://...")
        if options.script:
            try:
                self.script = await asyncio.to_thread(load_script, options.script)
            except ScriptError as exc:
                raise LoadSetupError(exc.message, exc.action) from None
            self._lines = await asyncio.to_thread(render_all, self.script)
            self._transcribe = any(step.expect is not None and step.expect.heard
                                   for step in self.script.steps)
        target = Target(profile=options.profile, url=options.url, variant_id=options.variant or None,
                        mode=options.mode or (self.script.target.mode if self.script else None),
                        ca_file=options.ca_file, fetch_ice_servers=options.fetch_ice_servers,
                        prefer_environment=True)
        gateway = EmbeddedGateway()
        self._stack.push_async_callback(gateway.stop)
        builder = RequestBuilder(config.ProfileStore(), TokenVault(), gateway, Redactor())
        try:
            self._request = await builder.build(target)
        except PrepError as exc:
            err = exc.error
            fix = err.action or ("Set POLYPHONE_TOKEN on this worker."
                                 if err.kind is ErrorKind.CONFIG else "")
            raise LoadSetupError(err.message, fix) from None
        self._sampler = asyncio.ensure_future(sample_loop_lag(self.deadlines.lags, every=0.1))

    async def one_call(self) -> list[Sample]:
        """One call, start to end; its entries for Locust. Never raises for the call's own failures."""
        d = self.deadlines
        d.calls += 1
        d.active += 1
        d.peak_active = max(d.peak_active, d.active)
        try:
            if self.script is not None:
                return await self._scripted()
            return await self._plain()
        finally:
            d.active -= 1

    async def _scripted(self) -> list[Sample]:
        assert self.script is not None
        media: list[tuple[Any, GapCounter]] = []      # this call's source, and its sink's counter
        runner = ScriptRunner(self.script, self._request, out_dir=self._out, lines=self._lines,
                              transcribe=self._transcribe, record=False,
                              on_media=lambda source, sink: media.append((source, GapCounter(sink))))
        try:
            result: RunResult = await runner.run()
        finally:
            for source, counter in media:
                self.deadlines.add({"frames": source.frames_sent, "late_frames": source.late_frames},
                                   {"intervals": counter.intervals, "gaps_over_60ms": counter.gaps})
        return samples(result)

    async def _plain(self) -> list[Sample]:
        started = asyncio.get_running_loop().time()
        entry = await one(self.deadlines.calls, self._request, Plan(play=self.options.play,
                                                                     duration=self.options.duration_s))
        self.deadlines.add(entry["send"], entry["receive"])
        result = entry["result"]
        error = dataclasses.asdict(result.error) if result.error is not None else None
        if error is not None:
            error["kind"] = result.error.kind.value
        shaped = RunResult("", "", "", "", ok=bool(result.connected) and result.error is None, error=error,
                           timings_ms=dict(result.timings_ms),
                           duration_s=asyncio.get_running_loop().time() - started)
        return samples(shaped)

    def call_timeout(self) -> float:
        if self.script is None:
            return self.options.duration_s + CALL_TIMEOUT_MARGIN_S
        return sum(getattr(step, "timeout_ms", 0) or 0 for step in self.script.steps) / 1000 \
            + CALL_TIMEOUT_MARGIN_S

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        await self._stack.aclose()


def failed_setup(exc: BaseException) -> Sample:
    """The `setup` entry of a call that could not even start (a bug, or the loop stopping)."""
    what = exc.message if isinstance(exc, UserFacingError) else type(exc).__name__
    return Sample(*SETUP, 0.0, f"call failed: {what}")


