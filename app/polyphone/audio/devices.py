"""List sound devices and load PortAudio. numpy-free, never imports Qt.

Two back ends, chosen per listing (`list_devices()`, and `stream_target.resolve()`):

- **pulse** (Linux, BSD): a PulseAudio or PipeWire-pulse server answers `pactl`
  and PortAudio has ALSA's `pulse` PCM (Debian `libasound2-plugins`). Through
  ALSA, PortAudio sees only `pulse`/`default`, so the real sources and sinks
  are listed with `pactl` (see `pulse.py`) and a stream on one of them is
  opened on PortAudio's `pulse` device with PULSE_SOURCE / PULSE_SINK set just
  while it opens (`stream_target.StreamTarget` does this).
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

import logging
import os
import sys
import threading
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UserFacingError
from . import pulse

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

lock = threading.RLock()         # PortAudio (re)initialisation, listing, env overrides, opening
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


def generation() -> int:
    """How many times PortAudio has been re-initialised (a PortAudio index is valid for one)."""
    return _generation


def rescan(*, force: bool = False) -> bool:
    """Re-initialise PortAudio so it sees devices added or removed since it started.

    Returns False (and does nothing) while a tracked stream is open, unless
    `force` (which stops those streams). The pulse back end never needs this
    to see Pulse devices; it only matters for PortAudio's own list.
    """
    global _generation
    sd = portaudio()
    with lock:
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
    with lock:
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
