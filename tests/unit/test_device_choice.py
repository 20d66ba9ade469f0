"""Device listing and choice on canned pactl output and a fake PortAudio: no sound server."""

from __future__ import annotations

import importlib.abc
import json
import sys

import pytest

from helpers.waits import until
from polyphone.audio import devices, pulse, stream_target
from polyphone.audio.devices import Device, DeviceError
from polyphone.audio.watcher import DeviceWatcher

SOURCES_JSON = json.dumps([
    {"index": 0, "state": "IDLE", "name": "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
     "description": "Monitor of Built-in Audio Analog Stereo",
     "sample_specification": "s16le 2ch 44100Hz",
     "monitor_source": "alsa_output.pci-0000_00_1f.3.analog-stereo",
     "properties": {"device.class": "monitor"}},
    {"index": 1, "state": "SUSPENDED", "name": "alsa_input.pci-0000_00_1f.3.analog-stereo",
     "description": "Built-in Audio Analog Stereo", "sample_specification": "s16le 2ch 48000Hz",
     "monitor_source": "", "properties": {"device.class": "sound"}},
    {"index": 7, "state": "RUNNING", "name": "bluez_input.AA_BB.0",
     "description": "WH-1000XM4", "sample_specification": "float32le 1ch 16000Hz",
     "monitor_source": "", "properties": {}},
])
SINKS_JSON = json.dumps([
    {"index": 0, "state": "RUNNING", "name": "alsa_output.pci-0000_00_1f.3.analog-stereo",
     "description": "Built-in Audio Analog Stereo", "sample_specification": "s16le 2ch 44100Hz",
     "monitor_source": "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor"},
])
INFO_JSON = json.dumps({"server_name": "PulseAudio (on PipeWire 1.0.5)", "server_version": "15.0.0",
                        "default_sink_name": "alsa_output.pci-0000_00_1f.3.analog-stereo",
                        "default_source_name": "alsa_input.pci-0000_00_1f.3.analog-stereo"})

LONG_SOURCES = """\
Source #0
\tState: IDLE
\tName: spk.monitor
\tDescription: Monitor of VirtualSpeaker
\tDriver: module-null-sink.c
\tSample Specification: s16le 2ch 48000Hz
\tChannel Map: front-left,front-right
\tVolume: front-left: 65536 / 100% / 0.00 dB,   front-right: 65536 / 100% / 0.00 dB
\t        balance 0.00
\tMonitor of Sink: spk
\tProperties:
\t\tdevice.description = "Monitor of VirtualSpeaker"
\t\tdevice.class = "monitor"

Source #2
\tState: IDLE
\tName: vmic
\tDescription: VirtualMic
\tDriver: module-remap-source.c
\tSample Specification: s16le 1ch 44100Hz
\tMonitor of Sink: n/a
\tProperties:
\t\tdevice.description = "VirtualMic"
"""
SHORT_SOURCES = ("0\tspk.monitor\tmodule-null-sink.c\ts16le 2ch 48000Hz\tIDLE\n"
                 "2\tvmic\tmodule-remap-source.c\ts16le 1ch 44100Hz\tRUNNING\n")
INFO_TEXT = """\
Server String: unix:/run/user/1000/pulse/native
Server Name: pulseaudio
Server Version: 16.1
Default Sample Specification: s16le 2ch 48000Hz
Default Sink: spk
Default Source: vmic
"""


# --- pactl parsing ----------------------------------------------------------------

def test_json_sources_marks_monitors_and_reads_specs() -> None:
    mon, mic, bt = pulse.parse_json_devices(SOURCES_JSON, "input")
    assert mon.is_monitor and not mic.is_monitor and not bt.is_monitor
    assert (mic.name, mic.description, mic.channels, mic.rate) == (
        "alsa_input.pci-0000_00_1f.3.analog-stereo", "Built-in Audio Analog Stereo", 2, 48000)
    assert (bt.channels, bt.rate, bt.index) == (1, 16000, 7)
    (sink,) = pulse.parse_json_devices(SINKS_JSON, "output")
    assert not sink.is_monitor and sink.rate == 44100  # a sink's monitor_source is not "is a monitor"


def test_long_and_short_text_forms() -> None:
    mon, mic = pulse.parse_long_devices(LONG_SOURCES, "input")
    assert (mon.name, mon.description, mon.is_monitor) == ("spk.monitor", "Monitor of VirtualSpeaker", True)
    assert (mic.name, mic.description, mic.is_monitor, mic.channels, mic.rate, mic.index) == (
        "vmic", "VirtualMic", False, 1, 44100, 2)
    mon, mic = pulse.parse_short_devices(SHORT_SOURCES, "input")
    assert mon.is_monitor and not mic.is_monitor
    assert (mic.description, mic.rate, mic.state) == ("vmic", 44100, "RUNNING")


def test_info_json_and_text() -> None:
    info = pulse.parse_info(INFO_JSON)
    assert info["default_source"] == "alsa_input.pci-0000_00_1f.3.analog-stereo"
    assert "PipeWire" in info["server"]
    assert pulse.parse_info(INFO_TEXT) == {"server": "pulseaudio 16.1", "default_sink": "spk",
                                           "default_source": "vmic"}
    with pytest.raises(pulse.PactlError):
        pulse.parse_info("Connection failure: Connection refused")
    with pytest.raises(pulse.PactlError):
        pulse.parse_json_devices("not json", "input")


def test_query_falls_back_to_text_when_json_is_unsupported(monkeypatch) -> None:
    calls = []

    def fake_pactl(*args, timeout=0):
        calls.append(args)
        if args[0] == "-f":
            raise pulse.PactlError("pactl: invalid option -- 'f'")
        return {("info",): INFO_TEXT, ("list", "sources"): LONG_SOURCES,
                ("list", "sinks"): ""}.get(args, "0\tspk\tmodule-null-sink.c\ts16le 2ch 48000Hz\tIDLE\n")

    monkeypatch.setattr(pulse, "pactl", fake_pactl)
    snap = pulse.query()
    assert [d.name for d in snap.sources] == ["spk.monitor", "vmic"]
    assert [d.name for d in snap.sinks] == ["spk"]  # long form empty -> short form
    assert (snap.default_sink, snap.default_source) == ("spk", "vmic")
    assert ("list", "short", "sinks") in calls


def test_query_reports_a_server_that_does_not_answer(monkeypatch) -> None:
    def refused(*args, timeout=0):
        raise pulse.PactlError("Connection failure: Connection refused")

    monkeypatch.setattr(pulse, "pactl", refused)
    with pytest.raises(pulse.PactlError, match="refused"):
        pulse.query()


# --- a fake PortAudio ---------------------------------------------------------------

class FakePortAudioError(Exception):
    pass


class FakeStream:
    def __init__(self, device=None, samplerate=None, channels=None, dtype=None, **kwargs):
        FakeSD.opened.append((device, samplerate, channels, dict(FakeSD.env_seen())))
        if FakeSD.refuse and (samplerate, channels) in FakeSD.refuse:
            raise FakePortAudioError(*FakeSD.refuse[(samplerate, channels)])
        self.samplerate, self.channels, self.closed = samplerate, channels, False

    def close(self):
        self.closed = True


class FakeSD:
    """Just enough of `sounddevice` for listing and opening."""

    PortAudioError = FakePortAudioError
    InputStream = OutputStream = FakeStream
    hostapis = [{"name": "ALSA"}, {"name": "JACK Audio Connection Kit"}]
    devices: list[dict] = []
    defaults = {"input": 0, "output": 0}
    opened: list = []
    refuse: dict = {}
    inits = 0

    @classmethod
    def env_seen(cls):
        import os
        return {k: os.environ[k] for k in ("PULSE_SOURCE", "PULSE_SINK") if k in os.environ}

    @classmethod
    def query_hostapis(cls):
        return cls.hostapis

    @classmethod
    def query_devices(cls, kind=None):
        if kind is None:
            return [dict(d) for d in cls.devices]
        return dict(cls.devices[cls.defaults[kind]], index=cls.defaults[kind])

    @classmethod
    def _terminate(cls):
        pass

    @classmethod
    def _initialize(cls):
        cls.inits += 1


def pa_device(name, hostapi=0, ins=0, outs=0, rate=48000.0):
    return {"name": name, "hostapi": hostapi, "max_input_channels": ins,
            "max_output_channels": outs, "default_samplerate": rate}


@pytest.fixture
def fake_sd(monkeypatch):
    FakeSD.devices = [pa_device("HDA Intel PCH: ALC257 Analog (hw:0,0)", ins=2, outs=2, rate=44100.0),
                      pa_device("USB Headset", ins=1, outs=2),
                      pa_device("USB Headset", ins=1, outs=2),
                      pa_device("system", hostapi=1, ins=2, outs=2),
                      pa_device("pulse", ins=32, outs=32, rate=44100.0)]
    FakeSD.defaults = {"input": 1, "output": 0}
    FakeSD.opened, FakeSD.refuse, FakeSD.inits = [], {}, 0
    monkeypatch.setattr(devices, "portaudio", lambda: FakeSD)
    monkeypatch.setattr(devices, "_streams", __import__("weakref").WeakSet())
    monkeypatch.setattr(devices, "_pulse_pcm_retry_for", None)
    monkeypatch.delenv("PULSE_SOURCE", raising=False)
    monkeypatch.delenv("PULSE_SINK", raising=False)
    return FakeSD


@pytest.fixture
def portaudio_only(fake_sd, monkeypatch):
    monkeypatch.setenv(devices.BACKEND_ENV, "portaudio")
    return fake_sd


@pytest.fixture
def pulse_server(fake_sd, monkeypatch):
    """A Pulse server answering with the canned JSON above."""
    monkeypatch.delenv(devices.BACKEND_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(pulse, "pactl_path", lambda: "/usr/bin/pactl")
    state = {"sources": SOURCES_JSON, "sinks": SINKS_JSON, "info": INFO_JSON}

    def fake_pactl(*args, timeout=0):
        return state[args[-1]]

    monkeypatch.setattr(pulse, "pactl", fake_pactl)
    return state


# --- PortAudio listing ------------------------------------------------------------------

def test_portaudio_ids_are_stable_and_twins_numbered(portaudio_only) -> None:
    inputs = devices.list_devices("input")
    assert [d.id for d in inputs] == [
        "portaudio:input:ALSA:HDA Intel PCH: ALC257 Analog (hw:0,0)",
        "portaudio:input:ALSA:USB Headset", "portaudio:input:ALSA:USB Headset#2",
        "portaudio:input:JACK Audio Connection Kit:system", "portaudio:input:ALSA:pulse"]
    assert [d.is_default for d in inputs] == [False, True, False, False, False]
    outputs = devices.list_devices("output")
    assert outputs[0].is_default and outputs[0].default_rate == 44100 and outputs[0].channels == 2
    # A device appearing earlier in PortAudio's order moves every index, not the ids.
    FakeSD.devices.insert(0, pa_device("Webcam Mic", ins=1))
    FakeSD.defaults = {"input": 2, "output": 1}
    again = {d.id: d for d in devices.list_devices("input")}
    assert {d.id for d in inputs} <= set(again)
    assert again["portaudio:input:ALSA:USB Headset"].is_default
    target = stream_target.resolve("portaudio:input:ALSA:USB Headset#2", "input")
    assert target.sd_device == 3 and target.env == {} and target.fallback_reason is None


def test_portaudio_resolve_default_and_fallback(portaudio_only) -> None:
    target = stream_target.resolve(None, "input")
    assert target.sd_device is None and target.device.name == "USB Headset"
    target = stream_target.resolve("portaudio:input:Core Audio:MacBook Pro Microphone", "input")
    assert target.device.id == "portaudio:input:ALSA:USB Headset"
    assert "MacBook Pro Microphone" in target.fallback_reason and "USB Headset" in target.fallback_reason
    # An id of the other kind is not a match.
    assert stream_target.resolve("portaudio:output:ALSA:USB Headset", "input").fallback_reason


def test_no_devices_at_all(portaudio_only) -> None:
    FakeSD.devices = [pa_device("speaker only", outs=2)]
    FakeSD.defaults = {"input": 0, "output": 0}
    assert devices.list_devices("input") == []
    with pytest.raises(DeviceError, match="No microphone") as exc:
        stream_target.resolve(None, "input")
    assert "polyphone devices" in exc.value.action


def test_missing_portaudio_library_says_what_to_install(monkeypatch) -> None:
    class NoPortAudio(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(DeviceError) as exc:
        devices.portaudio()
    assert "PortAudio" in exc.value.message and "libportaudio2" in exc.value.action


# --- Pulse listing and choice -------------------------------------------------------------

def test_pulse_devices_listed_with_descriptions_and_defaults(pulse_server) -> None:
    listed = devices.list_devices()
    assert [(d.kind, d.id, d.name, d.is_default) for d in listed] == [
        ("input", "pulse:input:alsa_input.pci-0000_00_1f.3.analog-stereo",
         "Built-in Audio Analog Stereo", True),
        ("input", "pulse:input:bluez_input.AA_BB.0", "WH-1000XM4", False),
        ("output", "pulse:output:alsa_output.pci-0000_00_1f.3.analog-stereo",
         "Built-in Audio Analog Stereo", True)]
    assert {d.hostapi for d in listed} == {"PipeWire"} and {d.backend for d in listed} == {"pulse"}
    assert len(devices.list_devices("input", include_monitors=True)) == 3


def test_pulse_resolve_sets_the_device_only_while_opening(pulse_server) -> None:
    target = stream_target.resolve("pulse:input:bluez_input.AA_BB.0", "input")
    assert target.sd_device == 4  # PortAudio's ALSA "pulse" device
    assert target.env == {"PULSE_SOURCE": "bluez_input.AA_BB.0"}
    stream = target.open_input()
    assert FakeSD.opened[-1] == (4, 48000, 1, {"PULSE_SOURCE": "bluez_input.AA_BB.0"})
    assert "PULSE_SOURCE" not in __import__("os").environ
    assert devices.streams_open() == 1 and devices.rescan() is False
    stream.close()
    assert devices.streams_open() == 0 and devices.rescan() is True
    out = stream_target.resolve(None, "output")
    assert out.env == {} and out.device.is_default
    gone = stream_target.resolve("pulse:input:usb-headset", "input")
    assert gone.env == {} and gone.device.name == "Built-in Audio Analog Stereo"
    assert "usb-headset" in gone.fallback_reason


def test_pulse_without_alsa_pulse_plugin_lists_portaudio(pulse_server) -> None:
    FakeSD.devices = [d for d in FakeSD.devices if d["name"] != "pulse"]
    listed = devices.list_devices("input")
    assert {d.backend for d in listed} == {"portaudio"}
    assert FakeSD.inits == 1  # looked again once, in case the server started after PortAudio


def test_only_monitors_means_no_microphone(pulse_server) -> None:
    pulse_server["sources"] = json.dumps(json.loads(SOURCES_JSON)[:1])
    with pytest.raises(DeviceError, match="No microphone"):
        stream_target.resolve(None, "input")
    # ...but a monitor chosen explicitly by id can be opened.
    target = stream_target.resolve("pulse:input:alsa_output.pci-0000_00_1f.3.analog-stereo.monitor", "input")
    assert target.device.is_monitor and target.fallback_reason is None


def test_find_device_by_id_name_or_unique_part(pulse_server) -> None:
    assert devices.find_device("WH-1000XM4").id == "pulse:input:bluez_input.AA_BB.0"
    assert devices.find_device("1000xm", "input").id == "pulse:input:bluez_input.AA_BB.0"
    assert devices.find_device("Built-in", "output").kind == "output"
    assert devices.find_device("Built-in") is None  # ambiguous: an input and an output
    assert devices.find_device("nothing like it") is None


# --- opening errors ------------------------------------------------------------------------

def test_open_falls_back_to_the_device_rate_then_stereo(portaudio_only) -> None:
    target = stream_target.resolve("portaudio:input:ALSA:HDA Intel PCH: ALC257 Analog (hw:0,0)", "input")
    FakeSD.refuse = {(48000, 1): ("Invalid sample rate", -9997),
                     (44100, 1): ("Invalid number of channels", -9998)}
    stream = target.open_input()
    assert (stream.samplerate, stream.channels) == (48000, 2)
    FakeSD.refuse[(48000, 2)] = ("Invalid sample rate", -9997)
    stream = target.open_input()
    assert (stream.samplerate, stream.channels) == (44100, 2)
    with pytest.raises(DeviceError, match="does not support 48000 Hz"):
        target.open_input(rate_fallback=False)


def test_busy_device_is_a_clear_error(portaudio_only) -> None:
    target = stream_target.resolve("portaudio:output:ALSA:USB Headset", "output")
    FakeSD.refuse = {(48000, 1): ("Device unavailable", -9985)}
    with pytest.raises(DeviceError, match="busy") as exc:
        target.open_output()
    assert "another device" in exc.value.action
    FakeSD.refuse = {(48000, 1): ("Unanticipated host error", -9999,
                                  (0, -16, "Device or resource busy"))}
    with pytest.raises(DeviceError, match="busy"):
        target.open_output()
    with pytest.raises(ValueError):
        target.open_input()


# --- the watcher -------------------------------------------------------------------------------

def dev(name: str, kind: str = "output", monitor: bool = False) -> Device:
    return Device(id=f"pulse:{kind}:{name}", name=name.title(), kind=kind, hostapi="PulseAudio",
                  backend="pulse", target=name, is_monitor=monitor)


async def test_watcher_reports_added_removed_lost_and_back() -> None:
    present = [dev("spk"), dev("vmic", "input")]
    changes, lost, back = [], [], []
    watcher = DeviceWatcher(interval=0.01, on_change=changes.append, scan=lambda: list(present))
    await watcher.poll()
    assert changes == [] and len(watcher.devices) == 2
    present += [dev("headset"), dev("headset.monitor", "input", monitor=True)]
    added = await watcher.poll()
    assert {d.id for d in added.added} == {"pulse:output:headset", "pulse:input:headset.monitor"}
    assert [d.id for d in changes[-1].added] == ["pulse:output:headset"]  # monitors hidden
    watch = watcher.watch("pulse:output:headset", "output", lost.append, back.append)
    present[:] = present[:2]
    await watcher.poll()
    await watcher.poll()
    assert [d.name for d in lost] == ["Headset"] and back == []  # once, with its last name
    present.append(dev("headset"))
    await watcher.poll()
    assert [d.id for d in back] == ["pulse:output:headset"]
    watch.cancel()
    present[:] = present[:2]
    await watcher.poll()
    assert len(lost) == 1


async def test_watcher_polls_on_its_own_and_survives_errors_and_bad_callbacks() -> None:
    present = [dev("spk")]
    calls = {"n": 0}

    def scan():
        calls["n"] += 1
        if calls["n"] == 2:
            raise DeviceError("server gone", "restart it")
        return list(present)

    def broken_listener(changes):
        raise RuntimeError("listener bug")

    seen = []
    async with DeviceWatcher(interval=0.01, on_change=broken_listener, scan=scan) as watcher:
        watcher.watch("pulse:output:spk", "output", seen.append)
        present.clear()
        await until(lambda: seen, 2.0, 0.01, error=None)
    assert [d.id for d in seen] == ["pulse:output:spk"] and calls["n"] >= 3


def test_device_changed_events_for_fallback_and_loss(pulse_server) -> None:
    from polyphone.audio.events import DeviceChanged

    assert stream_target.resolve(None, "input").change_event() is None
    event = stream_target.resolve("pulse:input:usb-headset", "input").change_event()
    assert isinstance(event, DeviceChanged) and event.kind == "input"
    assert event.device == "Built-in Audio Analog Stereo" and "usb-headset" in event.reason
    event = stream_target.lost_event(dev("headset"), dev("spk"))
    assert (event.kind, event.device) == ("output", "Spk") and "Headset was disconnected" in event.reason


def test_check_conversions() -> None:
    import numpy as np

    from polyphone.audio import check

    tone = check.check_tone(0.5, 440.0, -12.0)
    assert len(tone) == 24_000 and tone[0] == 0 and abs(check.peak_dbfs(tone) + 12) < 0.1
    assert len(check.resample(tone, 48_000, 44_100)) == 22_050
    assert len(check.resample(check.resample(tone, 48_000, 16_000), 16_000, 48_000)) == 24_000
    assert check.peak_dbfs(np.zeros(10, np.int16)) == -120.0
    with pytest.raises(ValueError):
        check.check_tone(0)


def test_check_result_summary_in_words() -> None:
    import numpy as np

    from polyphone.audio.check import CheckResult

    mic = Device(id="pulse:input:vmic", name="VirtualMic", kind="input", hostapi="PulseAudio")
    heard = CheckResult(np.zeros(48_000, np.int16), mic, -120.0, -120.0)
    assert heard.quiet and heard.summary.startswith("VirtualMic: heard -120 dBFS")
    assert "muted" in heard.summary and "array" not in repr(heard)
    spk = Device(id="pulse:output:spk", name="VirtualSpeaker", kind="output", hostapi="PulseAudio")
    played = CheckResult(np.zeros(24_000, np.int16), spk, -15.0, -12.0, "Headset is gone.")
    assert not played.quiet
    assert played.summary == ("Headset is gone. VirtualSpeaker: played 0.5 s at -12 dBFS peak. "
                              "Did you hear it?")
