"""The audio check: a speaker test tone, a microphone recording, and playing it back.

Usable from the CLI (`polyphone check`) and later from the GUI: every function
is a coroutine that keeps the event loop free (the PortAudio callbacks only
copy into preallocated buffers and wake the loop through
`call_soon_threadsafe`), and every wait is bounded. Samples are int16 mono at
48 kHz; a device that refuses 48 kHz or mono is opened at its own rate or in
stereo and converted. Explicit streams, never `sd.rec`/`sd.play` (they share
one global stream).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import numpy as np

from .analysis import SILENCE_FLOOR_DBFS, level_dbfs
from .devices import INPUT, OUTPUT, Device, DeviceError
from .files import tone
from .stream_target import StreamTarget, resolve

SAMPLE_RATE = 48_000
START_TIMEOUT = 5.0
"""Seconds a stream may take beyond its length to deliver or play everything
(an idle Pulse null sink can stall the first stream by ~2 s)."""
MAX_SECONDS = 60.0
QUIET_DBFS = -60.0
"""A recording below this RMS level is probably a muted or wrong microphone."""


@dataclass(frozen=True)
class CheckResult:
    """What one step heard or played."""

    samples: np.ndarray = field(repr=False)  # int16 mono, 48 kHz
    device: Device
    level_dbfs: float          # RMS
    peak_dbfs: float
    fallback_reason: str | None = None   # set when the default was used instead of the choice
    device_rate: int = SAMPLE_RATE       # the rate the device was opened at

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def quiet(self) -> bool:
        """A recording that heard (almost) nothing."""
        return self.device.kind == INPUT and self.level_dbfs < QUIET_DBFS

    @property
    def summary(self) -> str:
        """One line for a person, e.g. "VirtualMic: heard -23 dBFS (peak -10 dBFS)."."""
        if self.device.kind == INPUT:
            text = (f"{self.device.name}: heard {self.level_dbfs:.0f} dBFS "
                    f"(peak {self.peak_dbfs:.0f} dBFS) in {self.seconds:.1f} s.")
            if self.quiet:
                text += " That is almost silence: is the microphone muted, or the wrong one?"
        else:
            text = (f"{self.device.name}: played {self.seconds:.1f} s at "
                    f"{self.peak_dbfs:.0f} dBFS peak. Did you hear it?")
        if self.fallback_reason:
            text = f"{self.fallback_reason} {text}"
        return text


def peak_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return SILENCE_FLOOR_DBFS
    peak = float(np.max(np.abs(samples.astype(np.int32))))
    return SILENCE_FLOOR_DBFS if peak == 0 else max(SILENCE_FLOOR_DBFS,
                                                    20 * math.log10(peak / 32768))


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Linear resampling of int16 mono (enough for a check, not for a call)."""
    if rate_in == rate_out or len(samples) == 0:
        return samples
    n_out = int(round(len(samples) * rate_out / rate_in))
    x_new = np.arange(n_out) * (rate_in / rate_out)
    return np.interp(x_new, np.arange(len(samples)), samples).astype(np.int16)


def _result(samples: np.ndarray, target: StreamTarget, rate: int) -> CheckResult:
    return CheckResult(samples, target.device, level_dbfs(samples), peak_dbfs(samples),
                       target.fallback_reason, rate)


def _check_seconds(seconds: float) -> None:
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS:g}], not {seconds}")


async def _close(stream) -> None:
    def close() -> None:
        try:
            stream.stop()
        finally:
            stream.close()
    await asyncio.to_thread(close)


async def record(target: StreamTarget, seconds: float) -> CheckResult:
    """Record `seconds` from an input target."""
    _check_seconds(seconds)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    state = {"pos": 0, "buf": None}
    stop = _sd().CallbackStop

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass

    def callback(indata, frames, time_info, status) -> None:
        buf, pos = state["buf"], state["pos"]
        n = min(frames, len(buf) - pos)
        buf[pos:pos + n] = indata[:n]
        state["pos"] = pos + n
        if state["pos"] >= len(buf):
            wake()
            raise stop

    stream = await asyncio.to_thread(target.open_input, callback=callback)
    rate, channels = int(stream.samplerate), int(stream.channels)
    state["buf"] = np.zeros((int(round(seconds * rate)), channels), np.int16)
    try:
        await asyncio.to_thread(stream.start)
        await asyncio.wait_for(done.wait(), seconds + START_TIMEOUT)
    except asyncio.TimeoutError:
        got = state["pos"] / rate
        raise DeviceError(
            f"{target.device.name} delivered {got:.1f} s of audio in "
            f"{seconds + START_TIMEOUT:g} s (wanted {seconds:g} s).",
            "Check that it is connected and not held by another program.") from None
    finally:
        await _close(stream)
    pcm = state["buf"]
    mono = pcm.mean(axis=1).astype(np.int16) if channels > 1 else pcm[:, 0].copy()
    return _result(resample(mono, rate, SAMPLE_RATE), target, rate)


async def play_to(target: StreamTarget, samples: np.ndarray) -> CheckResult:
    """Play int16 mono 48 kHz `samples` on an output target; returns when played."""
    samples = np.asarray(samples, np.int16).reshape(-1)
    _check_seconds(max(len(samples), 1) / SAMPLE_RATE)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    state = {"pos": 0, "pcm": None}
    stop = _sd().CallbackStop

    def finished() -> None:
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:
            pass

    def callback(outdata, frames, time_info, status) -> None:
        pcm, pos = state["pcm"], state["pos"]
        n = min(frames, len(pcm) - pos)
        outdata[:n] = pcm[pos:pos + n]
        outdata[n:] = 0
        state["pos"] = pos + n
        if pos + n >= len(pcm):
            raise stop

    stream = await asyncio.to_thread(target.open_output, callback=callback,
                                     finished_callback=finished)
    rate, channels = int(stream.samplerate), int(stream.channels)
    mono = resample(samples, SAMPLE_RATE, rate)
    state["pcm"] = np.repeat(mono.reshape(-1, 1), channels, axis=1)
    duration = len(mono) / rate
    try:
        await asyncio.to_thread(stream.start)
        await asyncio.wait_for(done.wait(), duration + START_TIMEOUT)
    except asyncio.TimeoutError:
        raise DeviceError(f"{target.device.name} did not finish playing {duration:.1f} s "
                          f"in {duration + START_TIMEOUT:g} s.",
                          "Check that it is connected and not held by another program.") from None
    finally:
        await _close(stream)
    return _result(samples, target, rate)


def _sd():
    from .devices import portaudio
    return portaudio()


async def mic_test(device_id: str | None = None, seconds: float = 3.0) -> CheckResult:
    """Record `seconds` from the microphone `device_id` (None: the default)."""
    target = await asyncio.to_thread(resolve, device_id, INPUT)
    return await record(target, seconds)


async def play(samples: np.ndarray, device_id: str | None = None) -> CheckResult:
    """Play int16 mono 48 kHz samples on the output `device_id` (None: the default)."""
    target = await asyncio.to_thread(resolve, device_id, OUTPUT)
    return await play_to(target, samples)


def check_tone(seconds: float = 1.0, freq: float = 440.0, level: float = -12.0) -> np.ndarray:
    """A `freq` Hz tone at `level` dBFS peak, with 10 ms fades (no clicks)."""
    _check_seconds(seconds)
    pcm = tone(freq, seconds, level).astype(np.float64)
    fade = min(len(pcm) // 2, SAMPLE_RATE // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        pcm[:fade] *= ramp
        pcm[-fade:] *= ramp[::-1]
    return pcm.astype(np.int16)


async def speaker_tone(device_id: str | None = None, seconds: float = 1.0,
                       freq: float = 440.0, level: float = -12.0) -> CheckResult:
    """Play `check_tone(seconds, freq, level)` on the output `device_id` (None: the default)."""
    return await play(check_tone(seconds, freq, level), device_id)
