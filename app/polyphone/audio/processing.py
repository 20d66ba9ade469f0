"""Echo cancellation, noise suppression and gain control for the microphone.

`AudioProcessor` wraps libwebrtc's AudioProcessingModule (the one browsers use)
as shipped in the `livekit` wheel, for echo cancellation and noise
suppression; gain control is `gain.SpeechGain`, applied after it, which adapts
only on the caller's own speech (libwebrtc's would lift residual echo). Feed it what goes to the speaker
(`process_render`) and what comes from the microphone (`process_capture`); it
returns the microphone audio with the speaker's echo, steady noise and level
differences taken out. Everything is 10 ms frames of mono int16 underneath.

If `livekit` cannot be imported or its native library cannot be used (a
platform without the wheel, a forked child process), the processor passes audio
through unchanged and says why: `available` is False and `why` holds the reason.
It never raises on the audio path: a failure of the native module also falls
back to pass-through.

The native side accepts any whole number of 10 ms in one frame but aborts the
whole process (a Rust panic, not an exception) on anything else, so every frame
handed to it here is exactly one preallocated 10 ms frame.

Threads: one thread (or task) may call `process_capture` while another calls
`process_render` (each direction has its own scratch buffer), but not two
threads the same direction. `configure()` may be called from anywhere at any
time; it swaps in a new module between frames.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .gain import SpeechGain

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
FRAME_MS = 10
"""The module only takes 10 ms frames (480 samples at 48 kHz)."""


@dataclass(frozen=True)
class ProcessingSettings:
    """What the user asked for (the processor may still be pass-through: see `available`)."""

    echo_cancellation: bool = True
    noise_suppression: bool = True
    gain_control: bool = True

    @property
    def any(self) -> bool:
        return self.echo_cancellation or self.noise_suppression or self.gain_control


def _load_rtc() -> tuple[ModuleType | None, str]:
    """`livekit.rtc`, or None and the reason it is not usable here."""
    try:
        from livekit import rtc  # imported lazily: ~0.2 s, and optional
    except Exception as exc:  # ImportError, or OSError from the native library
        return None, f"livekit is not installed or does not load here ({exc.__class__.__name__}: {exc})"
    return rtc, ""


class _Scratch:
    """One preallocated 10 ms frame: a bytearray, its int16 view and the AudioFrame over it."""

    def __init__(self, rtc: ModuleType | None, rate: int, samples: int) -> None:
        self.buf = bytearray(2 * samples)
        self.view = np.frombuffer(self.buf, dtype=np.int16)
        self.frame: Any = rtc.AudioFrame(self.buf, rate, 1, samples) if rtc is not None else None


class AudioProcessor:
    """AEC + NS + AGC on the microphone path, switchable while a call runs.

    `process_capture(samples)` takes any whole number of 10 ms frames and
    returns the processed audio (a new array, or `out`). `process_render(samples)`
    takes what is being sent to the speaker, in any length; a partial frame is
    kept for the next call. `set_delay_ms()` tells the canceller how late the echo
    arrives (render call -> capture call); AEC3 also finds the delay itself.
    """

    def __init__(self, echo_cancellation: bool = True, noise_suppression: bool = True,
                 gain_control: bool = True, *, high_pass_filter: bool = True,
                 sample_rate: int = SAMPLE_RATE) -> None:
        if sample_rate not in (8_000, 16_000, 32_000, 48_000):
            raise ValueError("sample_rate must be 8, 16, 32 or 48 kHz")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self.high_pass_filter = high_pass_filter
        self._settings = ProcessingSettings(echo_cancellation, noise_suppression, gain_control)
        self._delay_ms = 0
        self._lock = threading.Lock()   # configure() vs configure(); the audio path never waits
        self._apm: Any = None
        self._gain: SpeechGain | None = None
        self.frames_captured = 0
        self.frames_rendered = 0
        self._rtc, self.why = _load_rtc()
        self.available = self._rtc is not None
        self._cap = _Scratch(self._rtc, sample_rate, self.frame_samples)
        self._ren = _Scratch(self._rtc, sample_rate, self.frame_samples)
        self._ren_fill = 0  # samples of a partial render frame waiting in self._ren
        if self.available:
            with self._lock:
                self._rebuild()
        else:
            log.warning("audio processing off: %s", self.why)

    # --- settings -------------------------------------------------------------------

    @property
    def enabled(self) -> ProcessingSettings:
        return self._settings

    @property
    def echo_cancellation(self) -> bool:
        return self._settings.echo_cancellation

    @property
    def noise_suppression(self) -> bool:
        return self._settings.noise_suppression

    @property
    def gain_control(self) -> bool:
        return self._settings.gain_control

    @property
    def active(self) -> bool:
        """True while a native module is processing (available and something is on)."""
        return self._apm is not None

    @property
    def delay_ms(self) -> int:
        return self._delay_ms

    def configure(self, *, echo_cancellation: bool | None = None,
                  noise_suppression: bool | None = None, gain_control: bool | None = None) -> None:
        """Switch features on or off at run time (None leaves one as it is).

        The native module takes its features only when created, so a change builds
        a new one and swaps it in between two frames; the echo canceller then
        re-converges (about a second of far-end speech).
        """
        with self._lock:
            old = self._settings
            new = ProcessingSettings(
                old.echo_cancellation if echo_cancellation is None else bool(echo_cancellation),
                old.noise_suppression if noise_suppression is None else bool(noise_suppression),
                old.gain_control if gain_control is None else bool(gain_control))
            if new == old:
                return
            self._settings = new
            if self.available:
                self._rebuild()

    def reset(self) -> None:
        """Forget all adaptation (a new call); also retries a module that failed."""
        with self._lock:
            self._ren_fill = 0
            if self._rtc is not None:
                self.available, self.why = True, ""
                self._rebuild()

    def set_delay_ms(self, ms: float) -> None:
        """Render-to-capture delay: output latency + input latency + buffering, in ms."""
        self._delay_ms = max(0, min(500, int(round(ms))))
        apm = self._apm
        if apm is not None and self._settings.echo_cancellation:
            try:
                apm.set_stream_delay_ms(self._delay_ms)
            except Exception as exc:
                self._fail(f"set_stream_delay_ms failed: {exc}")

    def _rebuild(self) -> None:
        """Create the native module for the current settings (caller holds the lock)."""
        s = self._settings
        self._gain = SpeechGain() if s.gain_control else None
        if not s.any or self._rtc is None:
            self._apm = None
            return
        try:
            # Gain control is ours (gain.SpeechGain, after the module): libwebrtc's
            # adaptive gain lifts the canceller's residual echo while it converges.
            apm = self._rtc.AudioProcessingModule(
                echo_cancellation=s.echo_cancellation, noise_suppression=s.noise_suppression,
                high_pass_filter=self.high_pass_filter, auto_gain_control=False)
            if s.echo_cancellation:
                apm.set_stream_delay_ms(self._delay_ms)
        except Exception as exc:  # e.g. RuntimeError after fork(), ImportError of the .so
            self._fail(f"the audio processing module could not be created: {exc}")
            return
        self._apm = apm

    def _fail(self, why: str) -> None:
        log.error("audio processing off: %s", why)
        self.available = False
        self.why = why
        self._apm = None

    # --- the audio path ---------------------------------------------------------------

    def process_capture(self, samples: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Microphone audio in (int16, a multiple of 10 ms), processed audio out."""
        n = len(samples)
        fs = self.frame_samples
        if n % fs:
            raise ValueError(f"capture audio must be a multiple of {fs} samples (10 ms), got {n}")
        if out is None:
            out = np.empty(n, dtype=np.int16)
        apm = self._apm
        if apm is None:
            out[:] = samples
            return out
        view, frame, gain = self._cap.view, self._cap.frame, self._gain
        i = 0
        try:
            while i < n:
                view[:] = samples[i:i + fs]
                apm.process_stream(frame)
                if gain is not None:
                    gain.apply(view)
                out[i:i + fs] = view
                i += fs
        except Exception as exc:
            self._fail(f"process_stream failed: {exc}")
            out[i:] = samples[i:]
        self.frames_captured += n // fs
        return out

    def process_render(self, samples: np.ndarray) -> None:
        """What is being played to the speaker (int16, any length): the echo reference."""
        apm = self._apm
        if apm is None or not self._settings.echo_cancellation:
            return  # without AEC the far end is not needed (NS looks at the mic only)
        view, frame, fs = self._ren.view, self._ren.frame, self.frame_samples
        n, i = len(samples), 0
        try:
            while i < n:
                take = min(fs - self._ren_fill, n - i)
                view[self._ren_fill:self._ren_fill + take] = samples[i:i + take]
                self._ren_fill += take
                i += take
                if self._ren_fill == fs:
                    apm.process_reverse_stream(frame)
                    if self._gain is not None:
                        self._gain.far_end(view)
                    self._ren_fill = 0
                    self.frames_rendered += 1
        except Exception as exc:
            self._fail(f"process_reverse_stream failed: {exc}")
