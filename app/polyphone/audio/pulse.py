"""The PulseAudio side of device listing: ask `pactl` what the sound server has.

Works with PulseAudio and with PipeWire's pulse server alike. Only `pactl`
(Debian `pulseaudio-utils`) is needed; no Python binding. Parsing is pure and
unit-tested on canned output; `query()` is the only function that runs it.

Formats, newest first: `pactl -f json` (pactl >= 16), the long text form
(`pactl list sources`, run with LC_ALL=C so the labels are English), and as a
last resort `pactl list short` (names only, no descriptions).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

PACTL_TIMEOUT = 3.0
"""Seconds one `pactl` call may take before the server counts as not answering."""


class PactlError(Exception):
    """`pactl` is missing, failed, or the server did not answer."""


@dataclass(frozen=True)
class PulseDevice:
    """One Pulse source (kind "input") or sink (kind "output")."""

    name: str            # the server's name for it: what PULSE_SOURCE / PULSE_SINK take
    description: str     # what people read
    kind: str            # input | output
    channels: int = 2
    rate: int = 48_000
    is_monitor: bool = False  # a sink's monitor source (what the sink plays), not a microphone
    index: int = -1
    state: str = ""


@dataclass(frozen=True)
class PulseSnapshot:
    """What the server has now."""

    server: str                    # e.g. "pulseaudio 16.1" or "PulseAudio (on PipeWire 1.0.5)"
    default_source: str | None
    default_sink: str | None
    sources: tuple[PulseDevice, ...]
    sinks: tuple[PulseDevice, ...]


_SPEC = re.compile(r"(?P<fmt>\S+)\s+(?P<ch>\d+)ch\s+(?P<rate>\d+)Hz")


def parse_sample_spec(spec: str) -> tuple[int, int]:
    """(channels, rate) of a spec like "s16le 2ch 48000Hz"; (2, 48000) if unreadable."""
    m = _SPEC.search(spec or "")
    if not m:
        return 2, 48_000
    return int(m["ch"]), int(m["rate"])


def _is_monitor_name(name: str) -> bool:
    return name.endswith(".monitor")


def parse_json_devices(text: str, kind: str) -> list[PulseDevice]:
    """`pactl -f json list sources|sinks` (kind input|output)."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PactlError(f"pactl printed invalid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise PactlError("pactl JSON: expected a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        name = str(item["name"])
        props = item.get("properties") or {}
        channels, rate = parse_sample_spec(str(item.get("sample_specification", "")))
        monitor = False
        if kind == "input":
            # For a source, "monitor_source" names the sink it monitors ("" for a real source).
            monitor = bool(item.get("monitor_source")) or props.get("device.class") == "monitor"
        description = str(item.get("description") or props.get("device.description") or name)
        out.append(PulseDevice(name=name, description=description, kind=kind,
                               channels=channels, rate=rate, is_monitor=monitor,
                               index=int(item.get("index", -1)), state=str(item.get("state", ""))))
    return out


def parse_long_devices(text: str, kind: str) -> list[PulseDevice]:
    """The long text form: `LC_ALL=C pactl list sources|sinks`."""
    out: list[PulseDevice] = []
    for block in re.split(r"\n(?=(?:Source|Sink) #)", text.strip()):
        header = re.match(r"(?:Source|Sink) #(\d+)", block)
        if not header:
            continue
        fields: dict[str, str] = {}
        for line in block.splitlines()[1:]:
            m = re.match(r"\t([A-Za-z][A-Za-z ]*): ?(.*)$", line)
            if m:
                fields.setdefault(m[1], m[2].strip())
        name = fields.get("Name")
        if not name:
            continue
        channels, rate = parse_sample_spec(fields.get("Sample Specification", ""))
        monitor_of = fields.get("Monitor of Sink", "n/a")
        monitor = kind == "input" and (monitor_of not in ("", "n/a") or _is_monitor_name(name))
        out.append(PulseDevice(name=name, description=fields.get("Description") or name, kind=kind,
                               channels=channels, rate=rate, is_monitor=monitor,
                               index=int(header[1]), state=fields.get("State", "")))
    return out


def parse_short_devices(text: str, kind: str) -> list[PulseDevice]:
    """`pactl list short sources|sinks`: index, name, driver, spec, state (tab separated)."""
    out = []
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip().isdigit():
            continue
        name = cols[1].strip()
        channels, rate = parse_sample_spec(cols[3] if len(cols) > 3 else "")
        out.append(PulseDevice(name=name, description=name, kind=kind, channels=channels, rate=rate,
                               is_monitor=kind == "input" and _is_monitor_name(name),
                               index=int(cols[0]), state=cols[4].strip() if len(cols) > 4 else ""))
    return out


def parse_info(text: str) -> dict[str, str | None]:
    """`pactl -f json info` or `LC_ALL=C pactl info` -> server, default_sink, default_source."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PactlError(f"pactl printed invalid JSON: {exc}") from exc
        return {"server": f"{data.get('server_name', '?')} {data.get('server_version', '')}".strip(),
                "default_sink": data.get("default_sink_name") or None,
                "default_source": data.get("default_source_name") or None}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if "Server Name" not in fields and "Default Sink" not in fields:
        raise PactlError("pactl info: unreadable output")
    return {"server": f"{fields.get('Server Name', '?')} {fields.get('Server Version', '')}".strip(),
            "default_sink": fields.get("Default Sink") or None,
            "default_source": fields.get("Default Source") or None}


def pactl_path() -> str | None:
    return shutil.which("pactl")


def pactl(*args: str, timeout: float = PACTL_TIMEOUT) -> str:
    """Run pactl (LC_ALL=C); its stdout, or PactlError with its stderr."""
    exe = pactl_path()
    if exe is None:
        raise PactlError("pactl is not installed (Debian package pulseaudio-utils)")
    env = dict(os.environ, LC_ALL="C")
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise PactlError(f"the sound server did not answer pactl {' '.join(args)} "
                         f"within {timeout:g} s") from exc
    except OSError as exc:
        raise PactlError(f"could not run pactl: {exc}") from exc
    if proc.returncode != 0:
        raise PactlError((proc.stderr or proc.stdout).strip() or f"pactl exited {proc.returncode}")
    return proc.stdout


def _json_unsupported(exc: PactlError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("invalid option", "unrecognized option", "unknown option",
                                   "invalid format", "'f'"))


def _list(kind: str, use_json: bool) -> list[PulseDevice]:
    what = "sources" if kind == "input" else "sinks"
    if use_json:
        return parse_json_devices(pactl("-f", "json", "list", what), kind)
    devices = parse_long_devices(pactl("list", what), kind)
    if devices:
        return devices
    return parse_short_devices(pactl("list", "short", what), kind)


def query() -> PulseSnapshot:
    """Ask the server; PactlError if pactl is missing or no server answers."""
    use_json = True
    try:
        info = parse_info(pactl("-f", "json", "info"))
    except PactlError as exc:
        if not _json_unsupported(exc):
            raise
        use_json = False
        info = parse_info(pactl("info"))
    return PulseSnapshot(server=str(info["server"]), default_source=info["default_source"],
                         default_sink=info["default_sink"],
                         sources=tuple(_list("input", use_json)),
                         sinks=tuple(_list("output", use_json)))
