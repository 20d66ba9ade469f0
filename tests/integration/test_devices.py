"""Device listing, choice, watching and the audio check against a real PulseAudio server.

The session's private server (helpers/sound_server.py) has a virtual speaker
`spk` (VirtualSpeaker), a sink `micsink` (MicFeed) and a virtual microphone
`vmic` (VirtualMic) that hears whatever is written to `micsink`.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from helpers.signal_match import best_correlation
from helpers.waits import until, wait_until
from polyphone.audio import check, devices
from polyphone.audio.analysis import level_dbfs
from polyphone.audio.devices import list_devices
from polyphone.audio.stream_target import resolve
from polyphone.audio.watcher import DeviceWatcher

pytestmark = pytest.mark.integration
RATE = 48_000


def chirp(seconds: float = 0.4, f0: float = 300.0, f1: float = 3000.0,
          level: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * math.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t * t)
    return (level * 32767 * np.sin(phase)).astype(np.int16)


def tone_level(samples: np.ndarray, freq: float) -> float:
    """dBFS of the `freq` component (single-bin DFT over the whole signal)."""
    if len(samples) == 0:
        return -120.0
    t = np.arange(len(samples)) / RATE
    x = samples.astype(np.float64)
    amp = 2 * abs(np.dot(x, np.exp(-2j * math.pi * freq * t))) / len(x)
    return 20 * math.log10(max(amp / math.sqrt(2), 1e-6) / 32768)


def by_id(items) -> dict:
    return {d.id: d for d in items}


def test_virtual_devices_are_listed_with_stable_ids(sound_server) -> None:
    found = by_id(list_devices())
    mic, speaker, feed = (found["pulse:input:vmic"], found["pulse:output:spk"],
                          found["pulse:output:micsink"])
    assert (mic.name, mic.kind, mic.is_default, mic.backend) == ("VirtualMic", "input", True, "pulse")
    assert (speaker.name, speaker.kind, speaker.is_default) == ("VirtualSpeaker", "output", True)
    assert not feed.is_default and speaker.default_rate == 48_000 and mic.hostapi == "PulseAudio"
    assert not any(d.is_monitor for d in found.values()), "monitors are hidden by default"
    monitors = [d for d in list_devices("input", include_monitors=True) if d.is_monitor]
    assert {d.id for d in monitors} >= {"pulse:input:spk.monitor", "pulse:input:micsink.monitor"}
    # Same ids after PortAudio re-initialises (indices may move; ids must not).
    assert devices.rescan() is True
    assert by_id(list_devices()) == found


def test_devices_json_command_lists_them(sound_server) -> None:
    r = subprocess.run([sys.executable, "-m", "polyphone.cli.devices", "devices", "--json"],
                       env=sound_server.child_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    listed = {d["id"]: d for d in json.loads(r.stdout)}
    assert listed["pulse:input:vmic"]["name"] == "VirtualMic"
    assert listed["pulse:input:vmic"]["is_default"] is True
    assert listed["pulse:output:spk"]["name"] == "VirtualSpeaker"
    assert set(listed["pulse:output:spk"]) >= {"id", "name", "kind", "hostapi", "is_default",
                                              "channels", "default_rate"}
    table = subprocess.run([sys.executable, "-m", "polyphone.cli.devices", "devices"],
                           env=sound_server.child_env(), capture_output=True, text=True, timeout=30)
    assert table.returncode == 0 and "VirtualMic" in table.stdout and "pulse:output:spk" in table.stdout


def test_unknown_id_falls_back_to_default_with_a_reason(sound_server) -> None:
    target = resolve("pulse:input:unplugged-headset", "input")
    assert target.device.id == "pulse:input:vmic" and target.env == {}
    assert "unplugged-headset" in target.fallback_reason and "VirtualMic" in target.fallback_reason
    chosen = resolve("pulse:output:micsink", "output")
    assert chosen.fallback_reason is None and chosen.env == {"PULSE_SINK": "micsink"}
    assert resolve(None, "output").device.id == "pulse:output:spk"


async def test_runtime_device_is_seen_and_its_loss_reported(sound_server) -> None:
    changes, lost, back = [], [], []
    async with DeviceWatcher(interval=0.2, on_change=changes.append) as watcher:
        module = sound_server.add_sink("headset", "Headset")
        try:
            await until(lambda: any(d.id == "pulse:output:headset"
                                    for c in changes for d in c.added), 5, what="headset added")
            assert by_id(list_devices("output"))["pulse:output:headset"].name == "Headset"
            # A stream playing on it, then the device goes away under it.
            target = resolve("pulse:output:headset", "output")
            stream = target.open_output()
            stream.start()
            watcher.watch("pulse:output:headset", "output", lost.append, back.append)
            assert devices.rescan() is False, "must not re-initialise PortAudio under a stream"
        finally:
            sound_server.unload_module(module)
        try:
            await until(lambda: lost, 5, what="on_lost")
        finally:
            stream.stop()
            stream.close()
        assert lost[0].id == "pulse:output:headset" and lost[0].name == "Headset"
        assert any(d.id == "pulse:output:headset" for c in changes for d in c.removed)
        assert not any(d.is_monitor for c in changes for d in c.added + c.removed)
        module = sound_server.add_sink("headset", "Headset")
        try:
            await until(lambda: back, 5, what="on_back")
        finally:
            sound_server.unload_module(module)
    assert len(lost) == 1 and back[0].id == "pulse:output:headset"


def record_stream(target, seconds: float, flags: list | None = None) -> np.ndarray:
    """Capture `seconds` through an InputStream opened on `target` (blocking)."""
    got, done = [], []
    frames = int(seconds * RATE)

    def callback(indata, n, time_info, status):
        if status and flags is not None:
            flags.append(str(status))
        got.append(indata[:, 0].copy())
        if sum(len(g) for g in got) >= frames:
            done.append(True)

    stream = target.open_input(callback=callback)
    assert stream.samplerate == RATE and stream.channels == 1
    with stream:
        wait_until(lambda: done, seconds + 5, 0.01, error=None)  # a short capture is judged below
    return np.concatenate(got) if got else np.zeros(0, np.int16)


async def test_mic_capture_through_resolve_hears_micsink(sound_server) -> None:
    sent, flags = chirp(), []
    target = resolve("pulse:input:vmic", "input")
    capture = asyncio.ensure_future(asyncio.to_thread(record_stream, target, 1.2, flags))
    await asyncio.sleep(0.2)
    await asyncio.to_thread(sound_server.play_into_mic, sent)
    got = await asyncio.wait_for(capture, 10)
    corr, lag = best_correlation(sent, got, max_lag_s=1.1)
    # Wrong routing gives ~0; a scheduling glitch on a loaded machine can cost a few 0.01.
    assert corr > 0.8, f"correlation {corr:.2f} at lag {lag * 1000:.0f} ms; capture flags {flags}"
    assert level_dbfs(got) > -30
    # Control: an explicitly chosen other source (the speaker's monitor) does not hear it.
    other = resolve("pulse:input:spk.monitor", "input")
    assert other.env == {"PULSE_SOURCE": "spk.monitor"}
    capture = asyncio.ensure_future(asyncio.to_thread(record_stream, other, 0.8))
    await asyncio.sleep(0.2)
    await asyncio.to_thread(sound_server.play_into_mic, sent)
    assert level_dbfs(await asyncio.wait_for(capture, 10)) < -90


async def test_output_through_resolve_reaches_the_chosen_sink(sound_server) -> None:
    rec = sound_server.record("spk.monitor")
    try:
        result = await check.play_to(resolve("pulse:output:spk", "output"),
                                     check.check_tone(0.5, 440.0))
        await asyncio.to_thread(rec.wait_for, 0.8)
    finally:
        heard = rec.stop()
    assert result.device.name == "VirtualSpeaker"
    assert tone_level(heard, 440.0) > -30, "the tone did not reach spk.monitor"
    # A non-default sink chosen by id: playing to MicFeed comes out of the virtual mic.
    sent = chirp()
    mic = resolve("pulse:input:vmic", "input")
    capture = asyncio.ensure_future(check.record(mic, 1.2))
    await asyncio.sleep(0.2)
    await check.play(sent, "pulse:output:micsink")
    got = (await asyncio.wait_for(capture, 10)).samples
    corr, lag = best_correlation(sent, got, max_lag_s=1.1)
    assert corr > 0.8, f"correlation {corr:.2f} at lag {lag * 1000:.0f} ms"


async def test_check_helpers_report_levels(sound_server) -> None:
    feed = await asyncio.to_thread(sound_server.play_into_mic,
                                   check.check_tone(5.0, 300.0, -20.0), wait=False)
    try:
        await asyncio.sleep(0.1)
        heard = await check.mic_test(None, seconds=0.5)
    finally:
        feed.kill()
        await asyncio.to_thread(feed.wait, 5)
    assert heard.device.id == "pulse:input:vmic" and heard.fallback_reason is None
    assert len(heard.samples) == RATE // 2
    assert -26 < heard.level_dbfs < -20 and -24 < heard.peak_dbfs < -17
    tone = await check.speaker_tone(None, seconds=0.3)
    assert tone.device.id == "pulse:output:spk" and abs(tone.peak_dbfs + 12) < 1


async def test_check_command_end_to_end(sound_server) -> None:
    # The virtual mic hears a 300 Hz tone throughout; the speaker's monitor is recorded.
    feed = await asyncio.to_thread(sound_server.play_into_mic,
                                   check.check_tone(8.0, 300.0, -16.0), wait=False)
    rec = sound_server.record("spk.monitor")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "polyphone.cli.devices", "check", "--input", "VirtualMic",
            "--output", "pulse:output:spk", "--seconds", "1", "--json",
            env=sound_server.child_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        heard = rec.stop()
        feed.kill()
        await asyncio.to_thread(feed.wait, 5)
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["input"]["device"]["id"] == "pulse:input:vmic"
    assert -22 < report["input"]["level_dbfs"] < -16 and not report["input"]["quiet"]
    assert report["output"]["device"]["name"] == "VirtualSpeaker"
    assert "heard:" in err.decode() and "Speaker: VirtualSpeaker" in err.decode()
    # The speaker played the 440 Hz test tone, then the recording (300 Hz) back.
    assert tone_level(heard, 440.0) > -40 and tone_level(heard, 300.0) > -40


def test_check_command_errors(sound_server, capsys) -> None:
    from polyphone.cli import devices as cli

    assert cli.main(["check", "--input", "no-such-mic"]) == 4
    assert "No microphone matches 'no-such-mic'" in capsys.readouterr().err
    assert cli.main(["check", "--seconds", "0"]) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "--seconds", "abc"])
    assert exc.value.code == 2
