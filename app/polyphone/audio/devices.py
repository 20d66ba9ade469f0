"""List, choose and open sound devices. numpy-free, never imports Qt.

Two back ends, chosen per call of `list_devices()` / `resolve()`:

- **pulse** (Linux, BSD): a PulseAudio or PipeWire-pulse server answers `pactl`
  and PortAudio has ALSA's `pulse` PCM (Debian `libasound2-plugins`). Through
  ALSA, PortAudio sees only `pulse`/`default`, so the real sources and sinks
  are listed with `pactl` (see `pulse.py`) and a stream on one of them is
  opened on PortAudio's `pulse` device with PULSE_SOURCE / PULSE_SINK set just
  while it opens (`StreamTarget.open_input` / `open_output` do this).
- **portaudio** (Windows, macOS, plain ALSA, or POLYPHONE_AUDIO_BACKEND=portaudio):
  PortAudio's own devices, named with their host API.

A `Device.id` is stable across re-scans and restarts (never a PortAudio
index): `pulse:input:<source name>`, `pulse:output:<sink name>`,
`portaudio:<kind>:<host api>:<device name>` (`#2`, `#3` for same-named twins).

PortAudio freezes its device list when it initialises; `rescan()` re-initialises
it, which would stop open streams, so it refuses while a stream opened through
`StreamTarget` (or registered with `track_stream`) is open. The pulse back end
needs no re-initialisation: `pactl` always answers with the live list.
`watcher.DeviceWatcher` polls for added and removed devices and tells the code using
a device when it goes away (so it can reopen on the default and emit
`DeviceChanged`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from ..errors import UserFacingError
from . import pulse
from .events import DeviceChanged

log = logging.getLogger(__name__)

INPUT = "input"
OUTPUT = "output"
KINDS = (INPUT, OUTPUT)
SAMPLE_RATE = 48_000

BACKEND_ENV = "POLYPHONE_AUDIO_BACKEND"
"""Set to "portaudio" to skip the PulseAudio listing (plain PortAudio devices)."""


class DeviceError(UserFacingError):
    """A sound device problem, in words, with what the user can do about it."""


@dataclass(frozen=True)
class Device:
    """One input or output device, as a person picks it."""

    id: str              # stable identity, for saved preferences
    name: str            # human name ("Built-in Audio Analog Stereo", "VirtualMic")
    kind: str            # input | output
    hostapi: str         # "PulseAudio", "PipeWire", "ALSA", "Windows WASAPI", "Core Audio", ...
    is_default: bool = False
    channels: int = 1
    default_rate: int = SAMPLE_RATE
    backend: str = "portaudio"   # pulse | portaudio
    target: str = ""     # pulse: the source/sink name; portaudio: PortAudio's device name
    is_monitor: bool = False     # a Pulse monitor source (what a sink plays)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- PortAudio, loaded lazily -------------------------------------------------

_lock = threading.RLock()        # PortAudio (re)initialisation, env overrides, opening
_generation = 0                  # bumped by every PortAudio re-initialisation
_streams: "weakref.WeakSet[Any]" = weakref.WeakSet()
_pulse_pcm_retry_for: str | None = None  # server we already re-scanned PortAudio for


def portaudio():
    """The `sounddevice` module; DeviceError if the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError as exc:  # the Linux wheel does not bundle PortAudio
        raise DeviceError(
            f"The audio library PortAudio is not installed ({exc}).",
            "Install it: sudo apt install libportaudio2 (Debian/Ubuntu), "
            "sudo dnf install portaudio (Fedora).") from exc
    except ImportError as exc:
        raise DeviceError(f"The Python package sounddevice is missing ({exc}).",
                          "Reinstall Polyphone (./build/setup.sh).") from exc
    return sounddevice


def track_stream(stream: Any) -> None:
    """Count a stream opened elsewhere as open, so `rescan()` will not stop it."""
    _streams.add(stream)


def streams_open() -> int:
    """How many tracked streams are still open (not closed)."""
    return sum(1 for s in list(_streams) if not getattr(s, "closed", True))


def rescan(*, force: bool = False) -> bool:
    """Re-initialise PortAudio so it sees devices added or removed since it started.

    Returns False (and does nothing) while a tracked stream is open, unless
    `force` (which stops those streams). The pulse back end never needs this
    to see Pulse devices; it only matters for PortAudio's own list.
    """
    global _generation
    sd = portaudio()
    with _lock:
        if not force and streams_open():
            log.debug("rescan skipped: %d stream(s) open", streams_open())
            return False
        try:
            sd._terminate()
            sd._initialize()
        except sd.PortAudioError as exc:
            raise DeviceError(f"PortAudio could not start again: {exc}",
                              "Restart Polyphone.") from exc
        _generation += 1
        log.debug("PortAudio re-initialised (generation %d)", _generation)
        return True


def _pa_devices(sd) -> list[dict[str, Any]]:
    hostapis = sd.query_hostapis()
    out = []
    for index, info in enumerate(sd.query_devices()):
        info = dict(info)
        info["index"] = index
        info["hostapi_name"] = hostapis[info["hostapi"]]["name"]
        out.append(info)
    return out


def _pulse_pcm_index(sd) -> int | None:
    for info in _pa_devices(sd):
        if info["name"] == "pulse" and info["hostapi_name"] == "ALSA":
            return info["index"]
    return None


# --- listing --------------------------------------------------------------------

@dataclass(frozen=True)
class _Scan:
    backend: str                  # pulse | portaudio
    devices: tuple[Device, ...]   # monitors included
    pulse_index: int | None = None
    pa_index: dict[str, int] = field(default_factory=dict)  # device id -> PortAudio index


def _pulse_query() -> pulse.PulseSnapshot | None:
    """The Pulse server's devices, or None when this is not a Pulse system (no lock held)."""
    if os.environ.get(BACKEND_ENV, "").lower() == "portaudio":
        return None
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if pulse.pactl_path() is None:
        return None
    try:
        return pulse.query()
    except pulse.PactlError as exc:
        log.debug("no Pulse server: %s", exc)
        return None


def _pulse_scan(sd, snap: pulse.PulseSnapshot) -> _Scan | None:
    global _pulse_pcm_retry_for
    index = _pulse_pcm_index(sd)
    if index is None and _pulse_pcm_retry_for != snap.server and not streams_open():
        # The server may have started after PortAudio initialised: look again, once.
        _pulse_pcm_retry_for = snap.server
        rescan()
        index = _pulse_pcm_index(sd)
    if index is None:
        log.info("Pulse server %s answers but PortAudio has no ALSA 'pulse' device "
                 "(install libasound2-plugins); listing PortAudio devices", snap.server)
        return None
    hostapi = "PipeWire" if "pipewire" in snap.server.lower() else "PulseAudio"
    devices = []
    for dev, default in ([(d, snap.default_source) for d in snap.sources]
                         + [(d, snap.default_sink) for d in snap.sinks]):
        devices.append(Device(
            id=f"pulse:{dev.kind}:{dev.name}", name=dev.description, kind=dev.kind,
            hostapi=hostapi, is_default=dev.name == default, channels=dev.channels,
            default_rate=dev.rate, backend="pulse", target=dev.name, is_monitor=dev.is_monitor))
    return _Scan("pulse", tuple(devices), pulse_index=index)


def _portaudio_scan(sd) -> _Scan:
    try:
        infos = _pa_devices(sd)
        defaults = {}
        for kind in KINDS:
            try:
                defaults[kind] = int(sd.query_devices(kind=kind)["index"])
            except (sd.PortAudioError, ValueError, KeyError, TypeError):
                defaults[kind] = -1
    except sd.PortAudioError as exc:
        raise DeviceError(f"PortAudio could not list devices: {exc}", "Restart Polyphone.") from exc
    devices, pa_index, seen = [], {}, {}
    for kind in KINDS:
        for info in infos:
            channels = int(info[f"max_{kind}_channels"])
            if channels <= 0:
                continue
            base = f"portaudio:{kind}:{info['hostapi_name']}:{info['name']}"
            seen[base] = seen.get(base, 0) + 1
            dev_id = base if seen[base] == 1 else f"{base}#{seen[base]}"
            devices.append(Device(
                id=dev_id, name=info["name"], kind=kind, hostapi=info["hostapi_name"],
                is_default=info["index"] == defaults[kind], channels=channels,
                default_rate=int(info["default_samplerate"] or SAMPLE_RATE),
                backend="portaudio", target=info["name"]))
            pa_index[dev_id] = info["index"]
    return _Scan("portaudio", tuple(devices), pa_index=pa_index)


def _scan() -> _Scan:
    sd = portaudio()
    snap = _pulse_query()  # subprocesses: outside the lock, so opening a stream never waits on them
    with _lock:
        return (snap is not None and _pulse_scan(sd, snap)) or _portaudio_scan(sd)


def current_backend() -> str:
    """"pulse" or "portaudio": which back end a listing made now would use."""
    return _scan().backend


def list_devices(kind: str | None = None, *, include_monitors: bool = False) -> list[Device]:
    """Devices now present, inputs then outputs (or only `kind`), in the system's order.

    Pulse monitor sources (what a sink plays) are left out unless asked for.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be input or output, not {kind!r}")
    return _filter(_scan().devices, kind, include_monitors)


def _filter(devices, kind, include_monitors) -> list[Device]:
    return [d for d in devices
            if (kind is None or d.kind == kind) and (include_monitors or not d.is_monitor)]


def find_device(text: str, kind: str | None = None) -> Device | None:
    """A device by id, else by exact name (any case), else by a unique part of its name."""
    devices = list_devices(kind, include_monitors=True)
    for dev in devices:
        if dev.id == text:
            return dev
    low = text.casefold()
    exact = [d for d in devices if d.name.casefold() == low]
    if len(exact) == 1:
        return exact[0]
    part = [d for d in devices if low in d.name.casefold() and not d.is_monitor]
    return part[0] if len(part) == 1 else None


def _no_device_error(kind: str) -> DeviceError:
    if kind == INPUT:
        return DeviceError("No microphone was found.",
                           "Connect a microphone or headset, check it is enabled in the "
                           "system sound settings, then run `polyphone devices`.")
    return DeviceError("No speaker or headphones were found.",
                       "Connect an output device, check it is enabled in the system sound "
                       "settings, then run `polyphone devices`.")


def _default_of(scan: _Scan, kind: str) -> Device:
    candidates = _filter(scan.devices, kind, include_monitors=False)
    if not candidates:
        raise _no_device_error(kind)
    return next((d for d in candidates if d.is_default), candidates[0])


# --- opening --------------------------------------------------------------------

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
        sd = portaudio()
        cls = sd.InputStream if kind == INPUT else sd.OutputStream
        options = [(samplerate, channels)]
        if rate_fallback:
            rates = [samplerate] + ([self.device.default_rate]
                                    if self.device.default_rate != samplerate else [])
            chans = [channels] + ([2] if channels == 1 and self.device.channels >= 2 else [])
            options = [(r, c) for c in chans for r in rates]
        first_error: BaseException | None = None
        with _lock, _env_overrides(self.env):
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
                track_stream(stream)
                return stream
        assert first_error is not None
        raise device_error_from(first_error, self.device, samplerate) from first_error

    def _current_index(self, sd) -> int | None:
        if self.generation == _generation:
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
    with _lock:
        scan = _scan()
        generation = _generation
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
