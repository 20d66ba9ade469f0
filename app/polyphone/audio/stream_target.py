"""Choosing the device a stream opens on (`resolve`) and opening it (`StreamTarget`).

`resolve(device_id, kind)` finds the device in a fresh listing (`devices`), falling
back to the system default with a reason when it is not connected; the
`StreamTarget` it returns opens a PortAudio stream there (on the pulse back end,
PortAudio's `pulse` device with PULSE_SOURCE / PULSE_SINK set while it opens), at
48 kHz mono int16 or, if the device refuses that, its own rate and/or stereo.
PortAudio's failures come back as `DeviceError`s in words (`device_error_from`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import devices
from .devices import INPUT, KINDS, OUTPUT, SAMPLE_RATE, Device, DeviceError
from .events import DeviceChanged


def _no_device_error(kind: str) -> DeviceError:
    if kind == INPUT:
        return DeviceError("No microphone was found.",
                           "Connect a microphone or headset, check it is enabled in the "
                           "system sound settings, then run `polyphone devices`.")
    return DeviceError("No speaker or headphones were found.",
                       "Connect an output device, check it is enabled in the system sound "
                       "settings, then run `polyphone devices`.")


def _default_of(scan: devices._Scan, kind: str) -> Device:
    candidates = devices._filter(scan.devices, kind, include_monitors=False)
    if not candidates:
        raise _no_device_error(kind)
    return next((d for d in candidates if d.is_default), candidates[0])


@contextlib.contextmanager
def _env_overrides(env: dict[str, str]) -> Iterator[None]:
    if not env:
        yield
        return
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# PortAudio error codes (portaudio.h)
_PA_INVALID_CHANNEL_COUNT = -9998
_PA_INVALID_SAMPLE_RATE = -9997
_PA_INVALID_DEVICE = -9996
_PA_SAMPLE_FORMAT_NOT_SUPPORTED = -9994
_PA_DEVICE_UNAVAILABLE = -9985
_FORMAT_ERRORS = (_PA_INVALID_CHANNEL_COUNT, _PA_INVALID_SAMPLE_RATE, _PA_SAMPLE_FORMAT_NOT_SUPPORTED)


def _pa_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def device_error_from(exc: BaseException, device: Device, rate: int | None = None) -> DeviceError:
    """A DeviceError in words for a PortAudio failure opening `device`."""
    code, text = _pa_code(exc), str(exc)
    what = f"{device.name} ({device.kind})"
    if code == _PA_DEVICE_UNAVAILABLE or "busy" in text.lower():
        return DeviceError(f"{what} is busy or unavailable.",
                           "Close other programs using it (or their exclusive mode), "
                           "or choose another device.")
    if code == _PA_INVALID_SAMPLE_RATE:
        return DeviceError(f"{what} does not support {rate or SAMPLE_RATE} Hz.",
                           "Choose another device, or set its rate to 48000 Hz in the system "
                           "sound settings.")
    if code in (_PA_INVALID_CHANNEL_COUNT, _PA_SAMPLE_FORMAT_NOT_SUPPORTED):
        return DeviceError(f"{what} does not support mono 16-bit audio ({text}).",
                           "Choose another device.")
    if code == _PA_INVALID_DEVICE:
        return DeviceError(f"{what} is no longer available.",
                           "Reconnect it, or choose another device (`polyphone devices`).")
    return DeviceError(f"Could not open {what}: {text}", "Choose another device.")


@dataclass(frozen=True)
class StreamTarget:
    """What opening a stream on one device needs; from `resolve()`.

    `sd_device` is a PortAudio index valid for the current PortAudio
    generation (the `open_*` methods look it up again after a `rescan()`);
    `env` is what must be in the environment while the stream opens (the
    Pulse source or sink); `fallback_reason` is set when the requested device
    was not available and this is the default instead (emit `DeviceChanged`).
    """

    device: Device
    sd_device: int | None
    env: dict[str, str] = field(default_factory=dict)
    fallback_reason: str | None = None
    generation: int = 0
    requested_id: str | None = None

    def change_event(self) -> DeviceChanged | None:
        """`DeviceChanged` to emit when this target is a fallback, else None."""
        if self.fallback_reason is None:
            return None
        return DeviceChanged(self.device.kind, self.device.name, self.fallback_reason)

    def open_input(self, **kwargs: Any):
        """An unstarted `sd.InputStream` on this device; see `open_stream` for arguments."""
        return self.open_stream(INPUT, **kwargs)

    def open_output(self, **kwargs: Any):
        """An unstarted `sd.OutputStream` on this device; see `open_stream` for arguments."""
        return self.open_stream(OUTPUT, **kwargs)

    def open_stream(self, kind: str, *, samplerate: int = SAMPLE_RATE, channels: int = 1,
                    dtype: str = "int16", rate_fallback: bool = True, **kwargs: Any):
        """Open (not start) a stream: 48 kHz mono int16 by default.

        With `rate_fallback`, a device that refuses `samplerate` or mono is
        opened at its own default rate and/or in stereo: read the stream's
        `samplerate` and `channels` and convert. Other keyword arguments
        (callback, finished_callback, blocksize, latency, ...) go to
        sounddevice. The stream is tracked (so `rescan()` will not stop it).
        Raises DeviceError.
        """
        if kind != self.device.kind:
            raise ValueError(f"{self.device.id} is an {self.device.kind} device, not {kind}")
        sd = devices.portaudio()
        cls = sd.InputStream if kind == INPUT else sd.OutputStream
        options = [(samplerate, channels)]
        if rate_fallback:
            rates = [samplerate] + ([self.device.default_rate]
                                    if self.device.default_rate != samplerate else [])
            chans = [channels] + ([2] if channels == 1 and self.device.channels >= 2 else [])
            options = [(r, c) for c in chans for r in rates]
        first_error: BaseException | None = None
        with devices.lock, _env_overrides(self.env):
            index = self._current_index(sd)
            for rate, chans_ in options:
                try:
                    stream = cls(device=index, samplerate=rate, channels=chans_, dtype=dtype,
                                 **kwargs)
                except sd.PortAudioError as exc:
                    first_error = first_error or exc
                    if _pa_code(exc) in _FORMAT_ERRORS:
                        continue
                    raise device_error_from(exc, self.device, rate) from exc
                devices.track_stream(stream)
                return stream
        assert first_error is not None
        raise device_error_from(first_error, self.device, samplerate) from first_error

    def _current_index(self, sd) -> int | None:
        if self.generation == devices.generation():
            return self.sd_device
        again = resolve(self.requested_id, self.device.kind)
        if again.device.id != self.device.id:
            raise DeviceError(f"{self.device.name} is no longer available.",
                              "Reconnect it, or choose another device.")
        return again.sd_device


def resolve(device_id: str | None, kind: str) -> StreamTarget:
    """Where to open a `kind` stream for `device_id` (None: the system default).

    An id that is not present now falls back to the default device, with
    `fallback_reason` saying so. DeviceError when there is no device at all.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be input or output, not {kind!r}")
    with devices.lock:
        scan = devices._scan()
        generation = devices.generation()
    reason = None
    device = None
    if device_id is not None:
        device = next((d for d in scan.devices if d.id == device_id and d.kind == kind), None)
        if device is None:
            default = _default_of(scan, kind)
            reason = (f"The chosen {'microphone' if kind == INPUT else 'speaker'} "
                      f"({device_id}) is not connected; using the default, {default.name}.")
            device = default
    if device is None:
        device = _default_of(scan, kind)
    if scan.backend == "pulse":
        env = {}
        if device_id is not None and reason is None:
            env = {("PULSE_SOURCE" if kind == INPUT else "PULSE_SINK"): device.target}
        return StreamTarget(device, scan.pulse_index, env, reason, generation, device_id)
    index = scan.pa_index[device.id]
    if device_id is None:
        index = None  # PortAudio's default: follows the system default
    return StreamTarget(device, index, {}, reason, generation, device_id)


def lost_event(lost: Device, now: Device) -> DeviceChanged:
    """`DeviceChanged` for moving from a device that went away to `now` (e.g. the default)."""
    what = "microphone" if lost.kind == INPUT else "speaker"
    return DeviceChanged(lost.kind, now.name,
                         f"The {what} {lost.name} was disconnected; using {now.name}.")
