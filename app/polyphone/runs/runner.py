"""Plays a caller script through a real call and measures every turn.

The call is the engine's (`engine.call.Call`: signaling, ICE, DTLS, Opus, Polyphone's
receive path), with `ScriptedSource` as the microphone and `AgentSink` as the ear,
exactly as `polyphone call --play` runs. Latency is measured where a caller's audio
enters the call and where the agent's audio leaves it: from the end of the caller's
last loud 20 ms frame, as it goes to the encoder, to the first loud frame of the
agent's reply, as it is decoded on arrival. It includes encoding, both network legs,
the gateway, the agent's own end-of-speech detection and think time, and Polyphone's
receive path; it excludes any sound device (a headset adds its own buffers, about
20-60 ms each way).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio.analysis import SpeechEdges, VoiceActivity
from ..audio.recorder import CallRecorder
from ..engine.call import Call
from ..engine.events import CallError, CallState, LogLine, SessionStarted, StateChanged, StatsSample
from ..engine.quality import QualityMonitor
from ..engine.request import CallRequest
from .caller_lines import render_all
from .captions import RunCaptions
from .envelope import Envelope
from .events import RunFinished, RunStarted, TurnMark, TurnResult, WaveChunk
from .judge import judge
from .script import SPOKEN, Line, Script, Step
from .tracks import LOUD_DBFS, AgentSink, ScriptedSource
from .turns import CallerTurn, Segment, turn_table

POLL_S = 0.02
HEARD_THRESHOLD = 0.6
AGENT_HANGOVER_MS = 300.0


@dataclass
class RunResult:
    script: str
    target: str
    out_dir: str
    started_at: str
    ok: bool = False
    error: dict[str, str] | None = None
    session_id: str | None = None
    call_sid: str | None = None
    timings_ms: dict[str, float | None] = field(default_factory=dict)
    duration_s: float = 0.0
    turns: list[TurnResult] = field(default_factory=list)
    step_timeouts: list[int] = field(default_factory=list)
    stats_series: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    recording: str | None = None
    transcript: list[dict[str, Any]] | None = None   # {who, start_ms, end_ms, text}; None: not made
    recognizer: str | None = None
    expectations: list[dict[str, Any]] = field(default_factory=list)   # the greeting's and [expect]'s
    passed: bool = False           # ended normally and every expectation met
    waveform: dict[str, Any] | None = None   # envelope.py: {step_s, caller, agent}, max peak per 50 ms

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ScriptRunner:
    def __init__(self, script: Script, request: CallRequest, *, out_dir: Path,
                 listener: Callable[[object], None] | None = None, label: str | None = None,
                 lines: dict[Line, np.ndarray] | None = None, transcribe: bool = True,
                 recognizer: tuple[str, str | None] = ("pocketsphinx", None), record: bool = True,
                 on_media: Callable[[ScriptedSource, AgentSink], None] | None = None) -> None:
        """`record`: write recording.wav into `out_dir` (a load test's calls do not); `on_media`
        sees the call's source and sink before the call starts (load/calls.py counts their
        frames)."""
        self.script = script
        self.request = request
        self.out_dir = Path(out_dir)
        self.listener = listener or (lambda _e: None)
        self.result = RunResult(script.name, label or script.target.label, str(self.out_dir),
                                datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self._lines = lines      # rendered before the call (caller_lines.render_all) when not given
        self._turn_of_step: dict[int, int | None] = {}
        self._last_turn: int | None = 0
        self._edges = SpeechEdges(VoiceActivity(LOUD_DBFS, hangover_ms=AGENT_HANGOVER_MS))
        self._segments: list[list[float | None]] = []
        self._caller: list[CallerTurn] = []
        self._t0: float | None = None
        self._connected = asyncio.Event()
        self._agent_peak = 0.0
        self._envelope = Envelope()   # bounded: 30 minutes of 50 ms buckets
        self._recorder: CallRecorder | None = None
        self._call: Call | None = None
        self._stopping = False
        self._quality = QualityMonitor()
        self._captions = RunCaptions(self._emit, lambda: self._t0, *recognizer) if transcribe else None
        self._record, self._on_media = record, on_media

    # --- the call's events and frames ----------------------------------------------------

    def _rel(self, t: float) -> float:
        return round(t - (self._t0 if self._t0 is not None else t), 3)

    def _emit(self, event: object) -> None:
        try:
            self.listener(event)
        except Exception:  # a broken view must not break the run
            pass

    def _on_event(self, event: object) -> None:
        r = self.result
        if isinstance(event, StateChanged) and event.state is CallState.CONNECTED:
            self._t0 = event.t
            self._connected.set()
        elif isinstance(event, SessionStarted):
            r.session_id, r.call_sid = event.session_id or None, event.call_sid
        elif isinstance(event, StatsSample):
            for w in self._quality.feed(event):
                r.warnings.append({**asdict(w), "t": self._rel(w.t)})
            sample = {k: v for k, v in asdict(event).items() if k != "t"}
            sample["loss_percent"] = event.fraction_lost * 100 / 256 if event.fraction_lost is not None \
                else None
            r.stats_series.append({"t": self._rel(event.t), **sample})
        elif isinstance(event, LogLine):
            r.log.append({"t": self._rel(event.t), "level": event.level, "source": event.source,
                          "text": event.text})
        elif isinstance(event, CallError):
            r.error = {"kind": event.kind.value, "code": event.code or "", "message": event.message,
                       "action": event.action}

    def _on_caller(self, samples: np.ndarray, t: float) -> None:
        if self._recorder is not None:
            self._recorder.add_caller(samples, t)
        if self._captions is not None:
            self._captions.feed("caller", samples, t)
        if self._t0 is not None:
            peak = float(np.abs(samples.astype(np.int32)).max()) / 32768 if len(samples) else 0.0
            chunk = WaveChunk(self._rel(t), round(peak, 3), round(self._agent_peak, 3))
            self._envelope.add(chunk.t, chunk.caller_peak, chunk.agent_peak)
            self._emit(chunk)
            self._agent_peak = 0.0

    def _on_agent(self, samples: np.ndarray, t: float) -> None:
        if self._recorder is not None:
            self._recorder.add_agent(samples, t)
        if self._captions is not None:
            self._captions.feed("agent", samples, t)
        if len(samples):
            self._agent_peak = max(self._agent_peak, float(np.abs(samples.astype(np.int32)).max()) / 32768)
        edge, when = self._edges.feed(samples, t)
        if edge == "start":
            self._segments.append([when, None])
            self._emit(TurnMark(len(self._caller), "agent_start", self._rel(when)))
        elif edge == "end" and self._segments:
            self._segments[-1][1] = when
            self._emit(TurnMark(len(self._caller), "agent_end", self._rel(when)))

    # --- the script ------------------------------------------------------------------------

    @property
    def _agent_speaking(self) -> bool:
        return bool(self._segments) and self._segments[-1][1] is None

    def _call_over(self) -> bool:
        return self._call is None or self._call.state.is_final or self._call.state is CallState.ENDING

    async def _until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self._call_over() or time.monotonic() >= deadline:
                return condition()
            await asyncio.sleep(POLL_S)
        return True

    async def _say(self, source: ScriptedSource, step: Step) -> None:
        assert step.line is not None and self._lines is not None
        turn = len(self._caller) + 1
        self._last_turn = None
        said = source.say(self._lines[step.line])
        while not said.done() and not self._call_over():
            await asyncio.wait({said}, timeout=0.1)
        first, end = said.result() if said.done() else (None, None)
        if first is None or end is None or self._t0 is None:
            return  # a silent line, or the call ended first: no turn
        self._caller.append(CallerTurn(step.kind, first - self._t0, end - self._t0))
        self._last_turn = turn
        start_mark = "barge_in" if step.kind == "barge_in" else "caller_start"
        for mark, at in ((start_mark, first), ("caller_end", end)):
            self._emit(TurnMark(turn, mark, self._rel(at)))

    async def _step(self, n: int, step: Step, source: ScriptedSource) -> bool:
        if step.kind == "hangup":
            return False
        if step.kind == "pause":
            await self._until(lambda: False, step.ms / 1000)
        elif step.kind in SPOKEN:
            await self._say(source, step)
            self._turn_of_step[n] = self._last_turn
        elif step.kind == "wait_for_agent":
            self._turn_of_step[n] = self._last_turn
            began = time.monotonic()

            def done() -> bool:
                heard = any(s[1] is None or s[1] >= began for s in self._segments)
                last_end = self._segments[-1][1] if self._segments else None
                quiet = last_end is not None and time.monotonic() - last_end >= step.silence_ms / 1000
                return heard and quiet
            if not await self._until(done, step.timeout_ms / 1000):
                self.result.step_timeouts.append(n)
        elif step.kind == "barge_in":
            def long_enough() -> bool:
                seg = self._segments[-1] if self._segments else None
                return seg is not None and seg[1] is None and time.monotonic() - seg[0] >= step.ms / 1000
            if not await self._until(long_enough, step.timeout_ms / 1000):
                self.result.step_timeouts.append(n)
            await self._say(source, step)
            self._turn_of_step[n] = self._last_turn
        return not self._call_over()

    async def _play_script(self, source: ScriptedSource) -> None:
        for n, step in enumerate(self.script.steps, 1):
            if self._stopping or not await self._step(n, step, source):
                return

    # --- the run ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Hang up now (the steps left are skipped; the report covers what happened)."""
        self._stopping = True
        if self._call is not None:
            await self._call.hangup()

    async def run(self) -> RunResult:
        if self._lines is None:
            self._lines = await asyncio.to_thread(render_all, self.script)
        if self._record:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._recorder = CallRecorder(self.out_dir / "recording.wav")
        if self._captions is not None:
            await self._captions.start()
        source, sink = ScriptedSource(self._on_caller), AgentSink(self._on_agent)
        if self._on_media is not None:
            self._on_media(source, sink)
        self._call = call = Call(self.request, source, sink, self._on_event)
        started = time.monotonic()
        task = asyncio.ensure_future(call.run())
        try:
            waiter = asyncio.ensure_future(self._connected.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self._connected.is_set() and not task.done():
                self._emit(RunStarted(self.script.name, self.result.target))
                await self._play_script(source)
        finally:
            if not task.done():
                await call.hangup()
            outcome = await task
            if self._recorder is not None:
                self._recorder.close()
            if self._captions is not None:
                self.result.transcript, self.result.recognizer = await self._captions.finish()
        self._finish(outcome, time.monotonic() - started)
        self._emit(RunFinished(self.result))
        return self.result

    def _finish(self, outcome: Any, duration_s: float) -> None:
        r = self.result
        r.ok = bool(outcome.connected) and r.error is None
        r.session_id = r.session_id or outcome.session_id or None
        r.call_sid = r.call_sid or outcome.call_sid or None
        r.timings_ms = dict(outcome.timings_ms)
        r.duration_s = round(duration_s, 2)
        r.waveform = self._envelope.to_json()
        if self._t0 is not None:
            segments: list[Segment] = [(s[0] - self._t0, None if s[1] is None else s[1] - self._t0)
                                       for s in self._segments]
            r.turns = turn_table(self._caller, segments)
        greeting_ms = round(1000 * (self._segments[0][0] - self._t0), 1) \
            if self._segments and self._t0 is not None else None
        judge(self.script, r, self._turn_of_step, greeting_ms=greeting_ms, transcript=r.transcript,
              heard_threshold=HEARD_THRESHOLD)
        for row in r.turns:
            self._emit(row)
        if self._recorder is not None and self._recorder.frames_written:
            r.recording = str(self._recorder.path)
