"""Media agents of the local gateway: the caller's track in, the agent's track out.

- `EchoAgent` (mode `echo`): sends the caller's audio straight back.
- `DemoAgent` (modes `end-to-end`, `traditional`): says a greeting, then says
  each of the caller's utterances back after a short think time, and stops
  talking at once when the caller barges in. The decisions are `turns.TurnTaker`.
  Keypad tones (in-band DTMF) are not said back: the agent logs the digits and
  answers them (`keypad.Keypad`).

Every agent reads the caller's track for as long as it lives: aiortc's receive
queue is unbounded, so an unread track is a memory leak.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from typing import Protocol

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from ..aio import cancel_and_wait
from ..audio.analysis import VoiceActivity, level_dbfs
from ..audio.files import FRAME_SAMPLES, SAMPLE_RATE, PacedSource, frame_to_mono, make_frame, read_wav
from ..paths import resource
from .keypad import Keypad, KeypadTurns
from .turns import TurnTaker

log = logging.getLogger(__name__)

GREETING = "sounds/greeting.wav"
AGENT_KINDS = ("echo", "demo", "announce")


class Agent(Protocol):
    """What the gateway needs from an agent."""

    output: MediaStreamTrack

    def start(self, incoming: MediaStreamTrack) -> None: ...

    async def stop(self) -> None: ...

    def counters(self) -> dict[str, int]: ...


# --- echo ---------------------------------------------------------------------


ECHO_BACKLOG = 10  # frames (200 ms) kept for a sender that pulls late; older ones dropped


class EchoTrack(MediaStreamTrack):
    """Plays back the frames `EchoAgent` reads, with its own monotonic pts.

    The caller's track is read by the agent's task, not by this track's
    `recv()`: if our sender never pulls (a caller offering `sendonly`), the
    frames are dropped here instead of piling up in aiortc's unbounded queue.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[AudioFrame | None] = asyncio.Queue(ECHO_BACKLOG)
        self._pts = 0
        self.frames = 0
        self.dropped = 0

    def put(self, frame: AudioFrame | None) -> None:
        """Queue a frame (None: the caller's track ended), dropping the oldest when full."""
        if self._frames.full():
            self._frames.get_nowait()
            self.dropped += 1
        self._frames.put_nowait(frame)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._frames.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        # The decoder's pts follow the RTP timestamps (random start, may jump);
        # the sender wants a clean count of samples.
        frame.pts = self._pts
        self._pts += frame.samples
        self.frames += 1
        return frame


class ListeningAgent:
    """An agent that reads the caller's track in its own task until it ends or `stop()`.

    Subclasses set `output` and handle each frame in `hear()`; `ended()` runs
    when the caller's track ends. A bad frame is counted, never fatal.
    """

    output: MediaStreamTrack

    def __init__(self) -> None:
        self.frames_heard = 0
        self.bad_frames = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, incoming: MediaStreamTrack) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._listen(incoming))

    async def _listen(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames_heard += 1
                try:
                    self.hear(frame)
                except Exception:  # a bad frame must not stop the reading
                    self.bad_frames += 1
                    if self.bad_frames == 1:
                        log.exception("%s could not use a frame", type(self).__name__)
        except MediaStreamError:
            self.ended()
        except asyncio.CancelledError:
            pass

    def hear(self, frame: AudioFrame) -> None:
        raise NotImplementedError

    def ended(self) -> None:
        pass

    async def stop(self) -> None:
        self.output.stop()
        await cancel_and_wait(self._task)
        self._task = None

    def counters(self) -> dict[str, int]:
        return {"frames_heard": self.frames_heard}


class EchoAgent(ListeningAgent):
    """Says back what it hears, on the caller's timeline: audio lost on the way in is
    replaced by as much silence (up to MAX_FILL_S), as a gateway's loss concealment
    would, so the echo's words keep their places."""

    MAX_FILL_S = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.output = EchoTrack()
        self._next_pts: int | None = None
        self.filled_frames = 0

    def hear(self, frame: AudioFrame) -> None:
        if frame.pts is not None and frame.sample_rate == SAMPLE_RATE:
            gap = frame.pts - self._next_pts if self._next_pts is not None else 0
            if 0 < gap <= self.MAX_FILL_S * SAMPLE_RATE:
                for _ in range(round(gap / FRAME_SAMPLES)):
                    self.output.put(make_frame(np.zeros(FRAME_SAMPLES, np.int16), 0))
                    self.filled_frames += 1
            self._next_pts = frame.pts + frame.samples
        self.output.put(frame)

    def ended(self) -> None:
        self.output.put(None)

    def counters(self) -> dict[str, int]:
        return {"frames_heard": self.frames_heard, "frames": self.output.frames,
                "dropped": self.output.dropped}


# --- demo ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_greeting() -> np.ndarray:
    """The bundled greeting, int16 mono 48 kHz (read once per process)."""
    pcm = read_wav(resource(GREETING))
    pcm.setflags(write=False)
    return pcm


class TurnTrack(PacedSource):
    """The demo agent's voice: 20 ms frames paced in real time, asked of the TurnTaker.

    Reuses PacedSource's pacing (its `recv()` asks `_next_chunk()` for each frame).
    """

    def __init__(self, turns: TurnTaker) -> None:
        super().__init__(None)
        self._turns = turns

    def _next_chunk(self) -> np.ndarray:
        return self._turns.speak(FRAME_SAMPLES, time.monotonic())

    @property
    def finished(self) -> bool:
        return False


class DemoAgent(ListeningAgent):
    def __init__(self, *, think_ms: float = 600.0, greeting: np.ndarray | None = None,
                 threshold_dbfs: float = -40.0, hangover_ms: float = 300.0,
                 session_id: str | None = None) -> None:
        super().__init__()
        pcm = load_greeting() if greeting is None else greeting
        vad = VoiceActivity(threshold_dbfs, hangover_ms=hangover_ms, sample_rate=SAMPLE_RATE)
        self.logic = KeypadTurns(pcm, think_ms=think_ms, vad=vad)
        self.keypad = Keypad(self.logic, session_id)
        self.output = TurnTrack(self.logic)

    @property
    def turns(self) -> int:
        return self.logic.turns

    @property
    def barge_ins(self) -> int:
        return self.logic.barge_ins

    def hear(self, frame: AudioFrame) -> None:
        mono = frame_to_mono(frame)
        if frame.sample_rate != SAMPLE_RATE and len(mono):
            n_out = int(len(mono) * SAMPLE_RATE / frame.sample_rate)
            mono = np.interp(np.linspace(0, len(mono) - 1, n_out),
                             np.arange(len(mono)), mono).astype(np.int16)
        now = time.monotonic()
        event = self.logic.hear(mono, now)
        self.keypad.hear(mono, now)
        if event in ("barge-in", "end", "keypad"):
            log.debug("demo agent: %s (turns=%d barge_ins=%d)",
                      event, self.logic.turns, self.logic.barge_ins)

    async def stop(self) -> None:
        await self.keypad.stop()
        await super().stop()

    def counters(self) -> dict[str, int]:
        return {"turns": self.turns, "barge_ins": self.barge_ins,
                "utterances": self.logic.utterances, "frames_heard": self.frames_heard,
                "keypad_digits": len(self.keypad.detector.heard), "keypad_replies": self.keypad.replies}


class AnnounceAgent(ListeningAgent):
    """Says its greeting over and over and never interrupts: a steady far end for tests
    (echo cancellation, latency). Keeps the level of what it hears, per 20 ms frame."""

    def __init__(self, greeting: np.ndarray | None = None) -> None:
        super().__init__()
        pcm = load_greeting() if greeting is None else greeting
        self.output = PacedSource(pcm, loop=True)
        self.heard: collections.deque[tuple[float, float]] = collections.deque(maxlen=6000)

    def hear(self, frame: AudioFrame) -> None:
        self.heard.append((time.monotonic(), level_dbfs(frame_to_mono(frame))))


THINK_PREFIX = "think-"
MAX_THINK_MS = 10_000


def think_ms_for(variant_id: str | None, artifact_version: str | None, default: float) -> float:
    """The demo agent's think time for one call: a variantId or build (artifactVersion) named
    `think-<ms>` (e.g. `think-300`) sets it, so A/B runs have targets that really differ; the
    build wins over the variant, as a pinned build does on the real gateway. Anything else:
    `default`."""
    for name in (artifact_version, variant_id):
        if name and name.startswith(THINK_PREFIX) and name[len(THINK_PREFIX):].isdigit():
            return float(min(int(name[len(THINK_PREFIX):]), MAX_THINK_MS))
    return default


def agent_kind_for(mode: str | None, forced: str | None = None) -> str:
    """Which agent serves an offer: the forced kind, else by the offer's mode."""
    if forced:
        return forced
    return "echo" if mode == "echo" else "demo"


def make_agent(kind: str, *, think_ms: float = 600.0, session_id: str | None = None) -> Agent:
    """A new agent; `session_id` names the session in the demo agent's log lines."""
    if kind == "echo":
        return EchoAgent()
    if kind == "demo":
        return DemoAgent(think_ms=think_ms, session_id=session_id)
    if kind == "announce":
        return AnnounceAgent()
    raise ValueError(f"unknown agent {kind!r} (choose from {', '.join(AGENT_KINDS)})")
