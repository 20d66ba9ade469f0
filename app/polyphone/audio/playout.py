"""Remote audio -> adaptive playout buffer -> speaker.

aiortc hands us frames as soon as they arrive (audio/jitter.py releases each
packet at once), so all timing lives here, in one place:

- a target fill that adapts to the measured network jitter (RFC 3550 style
  interarrival jitter), between `min_target_ms` and `max_target_ms`;
- priming: the speaker gets silence until the target is reached, at the start
  and after an under-run, so an under-run costs one glitch, not lasting delay;
- a lost packet (a gap in RTP time) is concealed with a faded repeat of the
  last audio, so the timeline does not shift; a long gap (the sender paused)
  is not filled — nothing waits for it;
- clock drift between the network and the sound card, and any excess after a
  burst, is absorbed by stretching or squeezing frames by at most 0.5 % (far
  above a backlog of `max_target_ms`, the excess is dropped at once), so the
  delay stays bounded for hours; a small excess (what an under-run or a
  jitter spike leaves) is cut out of the next pause;
- volume and under-runs counted.

The PortAudio callback only copies from the ring and scales in place.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from ..aio import cancel_and_wait
from .files import SAMPLE_RATE, frame_to_mono
from .ring import Ring
from .streams import OpenedStream, Resampler, open_stream

FrameHook = Callable[[np.ndarray, float], None]  # (48 kHz samples, time they will be heard)
MAX_CONCEAL_MS = 120
MAX_RATE_CHANGE = 0.005   # 0.5 %: 9 cents of pitch at most, 18 s an hour of drift
SQUEEZE_ABOVE_MS = 20     # dead band: squeeze only this far above the target (or 50 %) ...
STRETCH_BELOW_MS = 12     # ... and stretch only this far below it
TRIM_PAUSE_ABOVE_MS = 5   # a silent frame is shortened by the excess once the fill is this far over
QUIET_PEAK = 330          # a frame whose peak is under -40 dBFS counts as silence


class JitterEstimator:
    """RFC 3550 interarrival jitter, in seconds, from (arrival time, RTP time), and the
    95th percentile of the last 2 s of transit differences (a single stall is an outlier,
    not jitter: it must not raise the target for long)."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self.jitter = 0.0
        self._recent: collections.deque[float] = collections.deque(maxlen=100)

    def update(self, arrival: float, media_time: float) -> float:
        if self._last is not None:
            d = abs((arrival - self._last[0]) - (media_time - self._last[1]))
            self.jitter += (d - self.jitter) / 16
            self._recent.append(d)
        self._last = (arrival, media_time)
        return self.jitter

    @property
    def peak(self) -> float:
        """95th percentile of the recent transit differences, seconds."""
        if not self._recent:
            return 0.0
        ordered = sorted(self._recent)
        return ordered[int(0.95 * (len(ordered) - 1))]


class PlayoutBuffer:
    """The timing logic, free of PortAudio: frames in, fill control, ring out."""

    def __init__(self, out_rate: int = SAMPLE_RATE, *, min_target_ms: float = 40,
                 max_target_ms: float = 200, ring_ms: int = 2000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out_rate = out_rate
        self.clock = clock
        self.ring = Ring(out_rate * ring_ms // 1000)
        self.min_target_ms = min_target_ms
        self.max_target_ms = max_target_ms
        self.target_ms = min_target_ms
        self.jitter = JitterEstimator()
        self.resample = Resampler(SAMPLE_RATE, out_rate)
        self.primed = False
        self.underruns = 0
        self.concealed_ms = 0.0
        self.dropped_ms = 0.0
        self.correction = 0.0        # current stretch (+) / squeeze (-) ratio
        self.smoothed_fill_ms = float(min_target_ms)
        self.corrected_frames = 0    # frames stretched or squeezed
        self.correction_ppm = 0.0    # smoothed correction (a steady clock drift shows here)
        self.last_arrival = 0.0
        self._next_pts: int | None = None
        self._last_audio = np.zeros(480, dtype=np.int16)
        self._target_samples = int(out_rate * min_target_ms / 1000)

    # --- what the callback reads (plain attributes, no locks needed) ---------

    @property
    def target_samples(self) -> int:
        return self._target_samples

    @property
    def fill_ms(self) -> float:
        return self.ring.available * 1000 / self.out_rate

    # --- the asyncio side -----------------------------------------------------

    def push(self, samples: np.ndarray, pts: int | None, arrival: float) -> np.ndarray:
        """Queue one decoded frame (48 kHz mono). Returns what was queued (48 kHz)."""
        self.last_arrival = arrival
        out = []
        if pts is not None:
            if self._next_pts is not None:
                gap = (pts - self._next_pts) & 0xFFFFFFFF
                if 0 < gap <= SAMPLE_RATE * MAX_CONCEAL_MS // 1000:
                    out.append(self._conceal(gap))
                elif gap >= 0x80000000:  # older than what we played: a late frame, drop it
                    return np.zeros(0, dtype=np.int16)
            self._next_pts = (pts + len(samples)) & 0xFFFFFFFF
            jitter = self.jitter.update(arrival, pts / SAMPLE_RATE)
            self._adapt_target(jitter)
        out.append(samples)
        if len(samples) >= 480:
            self._last_audio = samples[-480:].copy()
        audio = np.concatenate(out) if len(out) > 1 else samples
        self._write(self._fit(audio))
        return audio

    def _conceal(self, n: int) -> np.ndarray:
        """n samples of a faded repeat of the last 10 ms (packet loss concealment)."""
        reps = -(-n // len(self._last_audio))
        filler = np.tile(self._last_audio, reps)[:n].astype(np.float32)
        filler *= np.linspace(0.8, 0.0, n, dtype=np.float32)
        self.concealed_ms += n * 1000 / SAMPLE_RATE
        return filler.astype(np.int16)

    def _adapt_target(self, jitter_s: float) -> None:
        want = max(self.min_target_ms, 20 + 1000 * max(3 * jitter_s, 1.5 * self.jitter.peak))
        want = min(self.max_target_ms, want)
        # rise at once, fall slowly: late audio costs a glitch, extra delay costs little
        self.target_ms = want if want > self.target_ms else self.target_ms + (want - self.target_ms) / 200
        self._target_samples = int(self.out_rate * self.target_ms / 1000)

    def _fit(self, audio: np.ndarray) -> np.ndarray:
        """Stretch or squeeze toward the target fill (bounded), after dropping gross excess.

        The control variable is the wait this frame will have (the fill once it
        is queued), smoothed over ~1 s because it saw-tooths with the sound
        card's block size, and it acts only outside a dead band: steady audio
        passes through bit for bit.
        """
        fill = self.fill_ms + len(audio) * 1000 / SAMPLE_RATE
        excess = fill - (self.max_target_ms + 60)
        if excess > 0 and self.primed:
            n = self.ring.skip(int(self.out_rate * excess / 1000))
            self.dropped_ms += n * 1000 / self.out_rate
            fill -= n * 1000 / self.out_rate
            self.smoothed_fill_ms = fill
        self.smoothed_fill_ms += (fill - self.smoothed_fill_ms) / 50
        error_ms = self.smoothed_fill_ms - self.target_ms
        ratio = 0.0
        too_full = error_ms > max(SQUEEZE_ABOVE_MS, 0.5 * self.target_ms)
        if error_ms > TRIM_PAUSE_ABOVE_MS and self.primed \
                and int(np.abs(audio).max(initial=0)) < QUIET_PEAK:
            # A pause can be shortened by the excess (up to the whole frame): nobody hears
            # a pause 20 ms shorter, and the step an under-run or a jitter spike left goes
            # at the next pause instead of staying inside the dead band for good.
            frame_ms = len(audio) * 1000 / SAMPLE_RATE
            cut_ms = min(error_ms, frame_ms)
            self.dropped_ms += cut_ms
            self.smoothed_fill_ms -= cut_ms
            return audio[int(round(len(audio) * cut_ms / frame_ms)):]
        if too_full or error_ms < -STRETCH_BELOW_MS:
            ratio = -max(-MAX_RATE_CHANGE, min(MAX_RATE_CHANGE, 0.0005 * error_ms))
        self.correction = ratio
        self.corrected_frames += ratio != 0.0
        self.correction_ppm += (ratio * 1e6 - self.correction_ppm) / 500
        if ratio == 0.0 or len(audio) < 2:
            return audio
        n_out = max(1, int(round(len(audio) * (1 + ratio))))
        x = np.linspace(0, len(audio) - 1, n_out)
        return np.interp(x, np.arange(len(audio)), audio).astype(np.int16)

    def _write(self, audio48: np.ndarray) -> None:
        if len(audio48):
            self.ring.write(self.resample(audio48))
        if not self.primed and self.ring.available >= self._target_samples:
            # Nothing plays yet, so trimming a burst to the target costs nothing.
            extra = self.ring.available - self._target_samples
            if extra > 0:
                self.dropped_ms += self.ring.skip(extra) * 1000 / self.out_rate
            self.smoothed_fill_ms = self.target_ms
            self.primed = True

    # --- the PortAudio side ---------------------------------------------------

    def pull_into(self, out: np.ndarray) -> None:
        """Fill `out` (int16, callback buffer) — silence while priming."""
        if not self.primed:
            out[:] = 0
            return
        got = self.ring.read_into(out)
        if got < len(out):
            out[got:] = 0
            self.primed = False  # re-prime to the target before playing on
            if self.clock() - self.last_arrival < 0.1:
                self.underruns += 1  # audio was flowing: a real under-run, not a pause


class Playout:
    """A sink: reads the remote track into a PlayoutBuffer that a speaker stream drains."""

    def __init__(self, device_id: str | None = None, *, volume: float = 1.0,
                 min_target_ms: float = 40, max_target_ms: float = 200) -> None:
        self.device_id = device_id
        self.volume = volume
        self.hooks: list[FrameHook] = []
        self.opened: OpenedStream | None = None
        self.buffer = PlayoutBuffer(min_target_ms=min_target_ms, max_target_ms=max_target_ms)
        self._task: asyncio.Task | None = None
        self._limits = (min_target_ms, max_target_ms)
        self.frames = 0
        self.first_frame_at: float | None = None
        self.callbacks = 0
        self.last_callback = 0.0
        self._scratch: np.ndarray | None = None
        self._latency: tuple[OpenedStream | None, float] = (None, 0.0)
        # What the speaker was actually given, as it was given (48 kHz devices): the echo
        # canceller's reference, fed in step with the microphone (AudioPipeline). None on a
        # device at another rate, where the decoded audio is the reference instead.
        self.played: Ring | None = None

    def _callback(self, outdata, frames, time_info, status) -> None:  # PortAudio thread
        out = outdata[:, 0]
        self.buffer.pull_into(out)
        volume = self.volume
        if volume != 1.0:
            scratch = self._scratch
            if scratch is None or len(scratch) < frames:  # once per block size, not per block
                scratch = self._scratch = np.zeros(frames, dtype=np.float32)
            work = scratch[:frames]
            np.multiply(out, volume, out=work)
            np.clip(work, -32767, 32767, out=work)  # above 100 %: limit, never wrap around
            out[:] = work
        played = self.played
        if played is not None:
            played.write(out)
        if outdata.shape[1] > 1:  # a stereo-only device: the same on both sides
            outdata[:, 1:] = outdata[:, :1]
        self.callbacks += 1
        self.last_callback = time.monotonic()

    def open(self) -> OpenedStream:
        """Open and start the speaker stream (silence until audio arrives)."""
        opened = open_stream("output", self.device_id, self._callback)
        if self.opened is None or opened.rate != self.buffer.out_rate:
            self.buffer = PlayoutBuffer(opened.rate, min_target_ms=self._limits[0],
                                        max_target_ms=self._limits[1])
        self.played = Ring(SAMPLE_RATE) if opened.rate == SAMPLE_RATE else None
        self.opened = opened
        self.callbacks = 0
        self.last_callback = time.monotonic()
        opened.stream.start()
        return opened

    def close_stream(self) -> None:
        opened, self.opened = self.opened, None
        if opened is not None:
            try:
                opened.stream.abort()
                opened.stream.close()
            except Exception:  # a vanished device may fail to close
                pass

    def switch_device(self, device_id: str | None) -> OpenedStream:
        self.close_stream()
        self.device_id = device_id
        return self.open()

    def stalled(self, now: float) -> bool:
        return self.opened is None or now - self.last_callback > 0.2

    @property
    def output_latency_ms(self) -> float:
        """The device's output latency (read once per stream: it is asked for every frame)."""
        opened = self.opened
        if opened is None:
            return 0.0
        if self._latency[0] is not opened:
            try:
                self._latency = (opened, float(opened.stream.latency) * 1000)
            except Exception:
                self._latency = (opened, 0.0)
        return self._latency[1]

    # --- sink: start(track) / stop() ---------------------------------------------

    def start(self, track: MediaStreamTrack) -> None:
        if self.opened is None:
            self.open()
        if self._task is None:
            self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame: AudioFrame = await track.recv()
                now = time.monotonic()
                if self.first_frame_at is None:
                    self.first_frame_at = now
                self.frames += 1
                mono = frame_to_mono(frame)
                if frame.sample_rate != SAMPLE_RATE:
                    mono = Resampler(frame.sample_rate, SAMPLE_RATE)(mono)
                audio = self.buffer.push(mono, frame.pts, now)
                heard_at = now + (self.buffer.fill_ms + self.output_latency_ms) / 1000
                for hook in self.hooks:
                    hook(audio, heard_at)
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def stop_reading(self) -> None:
        """Stop reading the remote track (the speaker stream stays open)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def stop(self) -> None:
        await self.stop_reading()
        self.close_stream()
