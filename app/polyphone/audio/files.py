"""Audio sources and sinks that need no sound card: WAV files, silence, tone.

Every source is an aiortc `MediaStreamTrack` of kind audio delivering 20 ms
frames of 48 kHz mono s16, paced in real time against the monotonic clock
(aiortc's sender calls `recv()` as fast as it returns). Every sink consumes a
remote track until stopped: `start(track)` begins reading, `stop()` ends and flushes.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import wave
from pathlib import Path

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from ..aio import cancel_and_wait
from ..paths import open_private

SAMPLE_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def make_frame(samples: np.ndarray, pts: int, rate: int = SAMPLE_RATE) -> AudioFrame:
    """An s16 mono AudioFrame from an int16 array."""
    data = np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1)
    frame = AudioFrame.from_ndarray(data, format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def frame_to_mono(frame: AudioFrame) -> np.ndarray:
    """int16 mono samples of any s16 frame (interleaved stereo is averaged)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if channels == 1:
        return data.reshape(-1).astype(np.int16, copy=False)
    pcm = data.reshape(channels, -1) if frame.format.is_planar else data.reshape(-1, channels).T
    if channels == 2:  # the usual case (aiortc decodes Opus to stereo): integer maths, per frame
        mono = pcm[0].astype(np.int32)
        mono += pcm[1]
        mono >>= 1
        return mono.astype(np.int16)
    return pcm.mean(axis=0).astype(np.int16)


def read_wav(path: str | Path) -> np.ndarray:
    """A WAV file as int16 mono at 48 kHz (linear resampling if needed)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != SAMPLE_RATE and len(pcm):
        n_out = int(round(len(pcm) * SAMPLE_RATE / rate))
        x_old = np.arange(len(pcm)) / rate
        x_new = np.arange(n_out) / SAMPLE_RATE
        pcm = np.interp(x_new, x_old, pcm).astype(np.int16)
    return pcm


def tone(freq: float = 440.0, seconds: float = 1.0, level_dbfs: float = -12.0) -> np.ndarray:
    n = int(SAMPLE_RATE * seconds)
    amp = 32767 * 10 ** (level_dbfs / 20)
    return (amp * np.sin(2 * math.pi * freq * np.arange(n) / SAMPLE_RATE)).astype(np.int16)


class PacedSource(MediaStreamTrack):
    """Plays int16 samples in 20 ms frames paced in real time; then silence (or a loop)."""

    kind = "audio"
    LATE_S = 0.02  # a frame asked for a whole frame late missed its deadline

    def __init__(self, samples: np.ndarray | None = None, *, loop: bool = False) -> None:
        super().__init__()
        self._pcm = np.zeros(0, np.int16) if samples is None else np.asarray(samples, np.int16)
        self._loop = loop and len(self._pcm) > 0
        self._pos = 0
        self._pts = 0
        self._start: float | None = None
        self.frames_sent = 0
        self.started_at: float | None = None  # monotonic time of the first frame
        self.late_frames = 0      # frames handed over more than LATE_S after they were due
        self.max_late_s = 0.0

    def _next_chunk(self) -> np.ndarray:
        chunk = self._pcm[self._pos:self._pos + FRAME_SAMPLES]
        self._pos += FRAME_SAMPLES
        if len(chunk) < FRAME_SAMPLES:
            if self._loop:
                self._pos = FRAME_SAMPLES - len(chunk)
                chunk = np.concatenate([chunk, self._pcm[:self._pos]])
            else:
                chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), np.int16)])
        return chunk

    @property
    def finished(self) -> bool:
        return not self._loop and self._pos >= len(self._pcm)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
            self.started_at = now
        else:
            due = self._start + self._pts / SAMPLE_RATE
            if due > now:
                await asyncio.sleep(due - now)
                now = time.monotonic()
            late = now - due  # > 0: asked for late, or woken late (a busy loop); deadline figures
            self.max_late_s = max(self.max_late_s, late)
            self.late_frames += late > self.LATE_S
            if late > 0.2:  # fell far behind (suspended loop): re-anchor, don't burst
                self._start = now - self._pts / SAMPLE_RATE
        frame = make_frame(self._next_chunk(), self._pts)
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return frame


class WavSource(PacedSource):
    def __init__(self, path: str | Path, *, loop: bool = False) -> None:
        super().__init__(read_wav(path), loop=loop)


class SilenceSource(PacedSource):
    def __init__(self) -> None:
        super().__init__(None)


class ToneSource(PacedSource):
    def __init__(self, freq: float = 440.0, level_dbfs: float = -12.0) -> None:
        super().__init__(tone(freq, 1.0, level_dbfs), loop=True)


class FrameConsumer:
    """Reads a remote track until it ends or `stop()`; subclasses handle each frame."""

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None
        self.frames = 0
        self.first_frame_at: float | None = None

    def start(self, track: MediaStreamTrack) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                self.frames += 1
                self.on_frame(frame)
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def on_frame(self, frame: AudioFrame) -> None:
        pass

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.close()

    def close(self) -> None:
        pass


class NullSink(FrameConsumer):
    """Reads and drops the remote audio (aiortc's receive queue is unbounded)."""


class MemorySink(FrameConsumer):
    """Keeps the remote audio as int16 mono at 48 kHz (tests, analysis)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[np.ndarray] = []

    def on_frame(self, frame: AudioFrame) -> None:
        self._chunks.append(frame_to_mono(frame))

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


class WavSink(FrameConsumer):
    """Writes the remote audio to a mono 48 kHz WAV as it arrives, on the sender's timeline.

    A frame whose pts (RTP time) skips ahead -- packets lost on the way, or a sender that
    stopped sending while silent (Opus DTX, a paused agent) -- gets the missing time written
    as silence first, so the words keep their places, as they do through the playout buffer
    a listener hears. A skip longer than `MAX_GAP_S` is filled only when about as much
    wall-clock time passed (a pause); otherwise it is a restart of the sender's clock.
    """

    MAX_GAP_S = 5.0
    MAX_PAUSE_S = 600.0

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._next_pts: int | None = None
        self._last_at = time.monotonic()
        self.filled_samples = 0
        self._file = open_private(self.path)  # readable by the user only
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)

    def on_frame(self, frame: AudioFrame) -> None:
        mono = frame_to_mono(frame)
        now = time.monotonic()
        if frame.pts is not None and frame.sample_rate == SAMPLE_RATE:
            gap = frame.pts - self._next_pts if self._next_pts is not None else 0
            if 0 < gap and self._is_pause(gap / SAMPLE_RATE, now - self._last_at):
                self._wav.writeframes(bytes(2 * gap))
                self.filled_samples += gap
            self._next_pts = frame.pts + len(mono)
        self._last_at = now
        if frame.sample_rate != SAMPLE_RATE:
            n_out = int(len(mono) * SAMPLE_RATE / frame.sample_rate)
            mono = np.interp(np.linspace(0, len(mono) - 1, n_out), np.arange(len(mono)),
                             mono).astype(np.int16)
        self._wav.writeframes(mono.tobytes())

    def _is_pause(self, gap_s: float, wall_s: float) -> bool:
        """A skip of `gap_s` of RTP time after `wall_s` of waiting: lost packets or a pause."""
        if gap_s <= self.MAX_GAP_S:
            return True
        return gap_s <= self.MAX_PAUSE_S and abs(gap_s - wall_s) <= max(0.5, 0.1 * wall_s)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None  # type: ignore[assignment]
            self._file.close()  # wave leaves a file it was handed open
