"""Calls through real (virtual) sound devices: a private PulseAudio, the local gateway, aiortc.

Speech goes into the virtual microphone (`micsink` -> `vmic`), Polyphone
captures it, the gateway answers, and what Polyphone plays comes out of the
virtual speaker (`spk`, recorded from `spk.monitor`).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from helpers.audio_call import start_call
from helpers.waits import until
from polyphone.audio.analysis import best_lag_correlation, level_dbfs, segment_correlation
from polyphone.audio.events import AudioStats, DeviceChanged
from polyphone.audio.files import read_wav
from polyphone.audio.pipeline import AudioPipeline, AudioSettings
from polyphone.engine.events import CallState
from polyphone.engine.quality import QualityMonitor
from polyphone.paths import resource

pytestmark = pytest.mark.integration
TOKEN = "audio-token-3a9d"
RATE = 48_000


def no_processing(**kw) -> AudioSettings:
    return AudioSettings(echo_cancellation=False, noise_suppression=False, gain_control=False, **kw)


async def test_speech_through_real_devices_comes_back_recognisably(sound_server, gateway_factory):
    sound_server.warm_up()
    gw = await gateway_factory(tokens=[TOKEN], agent="echo")
    events: list = []
    pipeline = AudioPipeline(no_processing(input_device="pulse:input:vmic",
                                           output_device="pulse:output:spk"), events.append)
    await pipeline.start()
    try:
        call, task = await start_call(gw, pipeline, "echo", events, TOKEN)
        await asyncio.sleep(1.0)  # let both streams settle
        speech = read_wav(resource("sounds/greeting.wav"))[: 3 * RATE]
        mic = sound_server.record("micsink.monitor")
        spk = sound_server.record("spk.monitor")
        await asyncio.to_thread(sound_server.play_into_mic, speech)
        await asyncio.sleep(0.8)
        sent, heard = mic.stop(), spk.stop()
        await call.hangup()
        result = await task
    finally:
        await pipeline.stop()
    assert result.ok, result.error
    corr, lag = best_lag_correlation(sent, heard, max_lag_s=1.0)
    # Two Opus generations and two trips through PulseAudio: the words survive (word by
    # word: a playout drift correction may shift them by a few ms over the clip) ...
    words = segment_correlation(sent, heard, lag)
    assert words >= 0.7, (words, corr, lag, pipeline.stats())
    # ... and come back quickly (the benchmark measures this properly).
    assert 0.02 < lag < 0.4, lag
    stats = pipeline.stats()
    assert stats.playout_underruns <= 2, stats


async def test_an_unplugged_headset_falls_back_and_the_call_goes_on(sound_server, gateway_factory):
    sound_server.warm_up()
    module = sound_server.add_sink("headset", "USB-Headset")
    gw = await gateway_factory(tokens=[TOKEN], agent="echo")
    events: list = []
    pipeline = AudioPipeline(no_processing(output_device="pulse:output:headset"), events.append)
    await pipeline.start()
    try:
        call, task = await start_call(gw, pipeline, "echo", events, TOKEN)
        await asyncio.sleep(0.5)
        sound_server.unload_module(module)  # the headset is pulled out
        await until(lambda: any(isinstance(e, DeviceChanged) for e in events), 10, 0.1,
                    "a DeviceChanged after the headset went away")
        frames_before = pipeline.sink.frames
        await asyncio.sleep(1.0)
        assert call.state is CallState.CONNECTED
        assert pipeline.sink.frames > frames_before + 25  # audio still flows
        await call.hangup()
        result = await task
    finally:
        await pipeline.stop()
    changed = next(e for e in events if isinstance(e, DeviceChanged))
    assert changed.kind == "output" and "USB-Headset" in changed.reason
    assert changed.device == "VirtualSpeaker"
    assert result.ok, result.error


async def echo_heard_by_agent(gw, processing: bool) -> tuple[float, float, float, list]:
    """The announce agent talks -> speaker -> acoustic path -> mic -> gateway.

    Returns (dBFS the gateway heard while the agent talked, dBFS of the agent
    as we played it, both after the canceller's first 1.5 s; the pipeline's
    worst `agent_echo` figure after that; the quality warnings a monitor raised).
    """
    settings = AudioSettings(echo_cancellation=processing, noise_suppression=processing,
                             gain_control=processing, input_device="pulse:input:vmic",
                             output_device="pulse:output:spk")
    stats: list[AudioStats] = []
    monitor, warnings = QualityMonitor(), []

    def on_event(e) -> None:
        if isinstance(e, AudioStats):
            stats.append(e)
        warnings.extend(monitor.feed(e))
    pipeline = AudioPipeline(settings, on_event)
    played: list[tuple[float, np.ndarray]] = []
    pipeline.sink.hooks.append(lambda s, t: played.append((t, s.copy())))
    await pipeline.start()
    try:
        call, task = await start_call(gw, pipeline, "end-to-end", [], TOKEN)
        t0 = time.monotonic()
        await asyncio.sleep(6.0)   # agent_echo is judged once a second; a warning needs 2 in a row
        agent = next(iter(gw.sessions.values())).agent
        heard = [db for t, db in agent.heard if t0 + 1.5 <= t <= t0 + 3.8]
        await call.hangup()
        await task
    finally:
        await pipeline.stop()
    far = [s for t, s in played if t0 + 1.5 <= t <= t0 + 3.8]
    power = np.mean([10 ** (db / 10) for db in heard])
    echo = max((e.agent_echo for e in stats if e.t >= t0 + 1.5), default=0.0)
    return 10 * np.log10(max(power, 1e-12)), level_dbfs(np.concatenate(far)), echo, warnings


async def test_echo_cancellation_keeps_the_agent_from_hearing_itself(sound_server, gateway_factory):
    sound_server.warm_up()
    # The speaker leaks back into the microphone, 20 ms later and about 18 dB down.
    loop = sound_server.load_module("module-loopback", "source=spk.monitor", "sink=micsink",
                                    "latency_msec=20", "source_dont_move=true",
                                    "sink_dont_move=true")
    try:
        for line in sound_server.pactl("list", "short", "sink-inputs").splitlines():
            if line.split("\t")[2:3] == [str(loop)]:
                sound_server.pactl("set-sink-input-volume", line.split("\t")[0], "50%")
        gw = await gateway_factory(tokens=[TOKEN], agent="announce")
        raw, far, raw_echo, raw_warnings = await echo_heard_by_agent(gw, processing=False)
        cancelled, _, cancelled_echo, cancelled_warnings = await echo_heard_by_agent(gw, processing=True)
    finally:
        sound_server.unload_module(loop)
    print(f"echo heard by the agent: {raw:.1f} dBFS raw, {cancelled:.1f} dBFS with processing "
          f"(far end {far:.1f} dBFS); agent_echo {raw_echo:.2f} raw, {cancelled_echo:.2f} processed")
    # The live warning says so without processing, and stays quiet with it.
    assert raw_echo > 0.5 and ("agent-echo", True) in [(w.kind, w.active) for w in raw_warnings]
    assert cancelled_echo < 0.3 and "agent-echo" not in [w.kind for w in cancelled_warnings]
    assert far > -40, far                    # the agent really spoke
    assert raw > far - 30, (raw, far)        # without processing, it hears itself
    assert raw - cancelled >= 25, (raw, cancelled)
