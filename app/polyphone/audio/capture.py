"""Microphone -> ring buffer -> MicrophoneTrack (aiortc).

The PortAudio callback only copies into a preallocated ring. `MicrophoneTrack`
hands aiortc 20 ms frames at the device's pace; when aiortc lags, the oldest
audio is dropped (and counted) so the delay from mouth to network stays
bounded. Mute sends silence and keeps RTP flowing. If the device stops
delivering (unplugged), the track keeps time on the clock with silence while
the owner reopens another device (`switch_device`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, Packet

from .files import FRAME_SAMPLES, SAMPLE_RATE, make_frame
from .opus import MonoOpusEncoder
from .ring import Ring
from .streams import OpenedStream, Resampler, open_stream

MAX_BACKLOG_MS = 60     # more than this waiting in the ring: drop the oldest
CAPTURE_BLOCK_MS = 10   # 20 ms blocks save ~1.5 % of a core but PulseAudio then delivers them in
                        # bursts: the far end sees 20 ms of jitter and plays out later (measured)
STALL_MS = 200          # no audio from the device for this long: fill with silence
FrameHook = Callable[[np.ndarray, float], None]  # (samples at 48 kHz, capture time)


class Capture:
    """One input stream at a time; `switch_device` replaces it without stopping the track."""

    def __init__(self, device_id: str | None = None, *, ring_ms: int = 500) -> None:
        self.device_id = device_id
        self.opened: OpenedStream | None = None
        self.ring = Ring(SAMPLE_RATE * ring_ms // 1000)
        self.overruns = 0
        self.callbacks = 0
        self.last_callback = 0.0
        self._resample = Resampler(SAMPLE_RATE, SAMPLE_RATE)

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio thread
        if status.input_overflow:
            self.overruns += 1
        self.ring.write(indata[:, 0])
        self.callbacks += 1
        self.last_callback = time.monotonic()

    def start(self) -> OpenedStream:
        self.opened = open_stream("input", self.device_id, self._callback, block_ms=CAPTURE_BLOCK_MS)
        self._resample = Resampler(self.opened.rate, SAMPLE_RATE)
        self.ring.clear()
        self.callbacks = 0
        self.last_callback = time.monotonic()
        self.opened.stream.start()
        return self.opened

    def stop(self) -> None:
        opened, self.opened = self.opened, None
        if opened is not None:
            try:
                opened.stream.abort()
                opened.stream.close()
            except Exception:  # a vanished device may fail to close; nothing to keep
                pass

    def switch_device(self, device_id: str | None) -> OpenedStream:
        self.stop()
        self.device_id = device_id
        return self.start()

    @property
    def rate(self) -> int:
        return self.opened.rate if self.opened else SAMPLE_RATE

    def stalled(self, now: float) -> bool:
        return self.opened is None or now - self.last_callback > STALL_MS / 1000

    def take(self) -> np.ndarray:
        """Everything waiting, resampled to 48 kHz."""
        raw = self.ring.read(self.ring.available)
        return self._resample(raw)


class MicrophoneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, capture: Capture, *, process: Callable[[np.ndarray], np.ndarray] | None = None,
                 max_backlog_ms: int = MAX_BACKLOG_MS, encoder: MonoOpusEncoder | None = None) -> None:
        """With `encoder`, `recv()` returns Opus packets (see opus.py); otherwise AudioFrames."""
        super().__init__()
        self.capture = capture
        self.process = process
        self.encoder = encoder
        self.hooks: list[FrameHook] = []
        self.muted = False
        self.dropped_samples = 0
        self._tones = np.zeros(0, dtype=np.int16)   # keypad tones, sent instead of the microphone
        self._max_backlog = SAMPLE_RATE * max_backlog_ms // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self._pts = 0
        self._clock_start: float | None = None

    @property
    def dropped_ms(self) -> float:
        return (self.dropped_samples + self.capture.ring.dropped) * 1000 / SAMPLE_RATE

    async def recv(self) -> AudioFrame | Packet:
        if self.readyState != "live":
            raise MediaStreamError
        while True:
            samples = self._prepare(await self._next_frame())
            if self.encoder is None:
                frame = make_frame(samples, self._pts)
                self._pts += FRAME_SAMPLES
                return frame
            self._pts += FRAME_SAMPLES
            packet = self.encoder.encode(samples)
            if packet is not None:
                return packet

    def send_tones(self, pcm: np.ndarray) -> None:
        """Send `pcm` (int16 mono, 48 kHz: keypad tones) in place of the microphone, after
        whatever is still queued; muted or not, as a phone sends its keys."""
        self._tones = np.concatenate([self._tones, np.asarray(pcm, dtype=np.int16)])

    def _prepare(self, samples: np.ndarray) -> np.ndarray:
        if self.process is not None:
            samples = self.process(samples)   # the echo canceller keeps running under the tones
        if len(self._tones):
            samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            n = min(FRAME_SAMPLES, len(self._tones))
            samples[:n], self._tones = self._tones[:n], self._tones[n:]
        elif self.muted:
            samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        t = time.monotonic()
        for hook in self.hooks:
            hook(samples, t)
        return samples

    async def _next_frame(self) -> np.ndarray:
        now = time.monotonic()
        if self._clock_start is None:
            self._clock_start = now
            # What the microphone heard before the call started is not sent.
            self.capture.ring.skip(max(0, self.capture.ring.available - FRAME_SAMPLES))
        while True:
            if len(self._pending) < FRAME_SAMPLES:
                got = self.capture.take()
                if len(got):
                    self._pending = np.concatenate([self._pending, got])
            if len(self._pending) >= FRAME_SAMPLES:
                excess = len(self._pending) - FRAME_SAMPLES - self._max_backlog
                if excess > 0:  # aiortc lagged: keep the newest audio, count the rest
                    self._pending = self._pending[excess:]
                    self.dropped_samples += excess
                frame, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
                self._clock_start = time.monotonic() - (self._pts + FRAME_SAMPLES) / SAMPLE_RATE
                return frame
            now = time.monotonic()
            due = self._clock_start + (self._pts + FRAME_SAMPLES) / SAMPLE_RATE
            if self.capture.stalled(now) and now >= due:
                return np.zeros(FRAME_SAMPLES, dtype=np.int16)  # keep RTP flowing
            missing = FRAME_SAMPLES - len(self._pending)
            await asyncio.sleep(max(0.002, min(0.02, missing / SAMPLE_RATE)))

    def stop(self) -> None:
        super().stop()

