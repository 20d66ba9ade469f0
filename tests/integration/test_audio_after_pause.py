"""After the agent's 20 s without RTP (Opus DTX, a paused agent), its audio plays at once:
real (virtual) sound devices, the real local gateway's echo agent pausing its RTP while RTCP
and ICE consent go on. The round trip of the same speech before and after the pause is the
same: nothing waited, nothing piled up in the playout buffer."""

from __future__ import annotations

import asyncio

import pytest

from helpers.audio_call import start_call
from helpers.waits import until
from polyphone.audio.analysis import best_lag_correlation, segment_correlation
from polyphone.audio.files import read_wav
from polyphone.audio.pipeline import AudioPipeline, AudioSettings
from polyphone.engine.events import AgentSilence, MediaStalled
from polyphone.localgw.faults import Faults
from polyphone.paths import resource

pytestmark = pytest.mark.integration
TOKEN = "pause-token-0c5e2b"
RATE = 48_000
PAUSE = (6.0, 20.0)
TRIES = 2   # round trips each side of the pause; the shortest of them is the path's latency


async def round_trip(sound_server, speech) -> tuple[float, float]:
    """(lag in seconds, word-by-word correlation) of `speech` sent into the mic and heard.

    One clip's lag varies by up to ~30 ms with scheduling (89-143 ms before the pause on one
    tree, same code): only ever later than the path itself. `shortest` keeps the least of a few."""
    mic, spk = sound_server.record("micsink.monitor"), sound_server.record("spk.monitor")
    await asyncio.to_thread(sound_server.play_into_mic, speech)
    await asyncio.sleep(0.8)
    sent, heard = mic.stop(), spk.stop()
    _corr, lag = best_lag_correlation(sent, heard, max_lag_s=1.0)
    return lag, segment_correlation(sent, heard, lag)


async def shortest(sound_server, speech) -> tuple[float, float]:
    trips = [await round_trip(sound_server, speech) for _ in range(TRIES)]
    heard = [trip for trip in trips if trip[1] >= 0.7] or trips   # a clip whose words came back
    return min(heard, key=lambda trip: trip[0])


async def test_the_agents_audio_plays_at_once_after_a_20_s_pause(sound_server, gateway_factory):
    sound_server.warm_up()
    gw = await gateway_factory(tokens=[TOKEN], agent="echo", faults=Faults(pause_rtp=PAUSE))
    events: list = []
    settings = AudioSettings(echo_cancellation=False, noise_suppression=False, gain_control=False,
                             input_device="pulse:input:vmic", output_device="pulse:output:spk")
    pipeline = AudioPipeline(settings, events.append)
    await pipeline.start()
    speech = read_wav(resource("sounds/greeting.wav"))[: int(1.5 * RATE)]
    try:
        call, task = await start_call(gw, pipeline, "echo", events, TOKEN)
        await asyncio.sleep(0.5)
        before = await shortest(sound_server, speech[: RATE])   # done before the pause starts
        session = next(iter(gw.sessions.values()))
        await until(lambda: session.rtp_pause is not None and session.rtp_pause.ended_at is not None,
                    PAUSE[0] + PAUSE[1] + 5, 0.05, "the gateway's RTP pause to end")
        paused = session.rtp_pause.ended_at - session.rtp_pause.started_at
        after = await shortest(sound_server, speech[: RATE])
        await call.hangup()
        result = await task
    finally:
        await pipeline.stop()
    assert result.ok, result.error
    assert paused >= PAUSE[1] - 0.1
    silences = [e for e in events if isinstance(e, AgentSilence)]
    assert [e.active for e in silences][:2] == [True, False] and not any(
        isinstance(e, MediaStalled) for e in events)
    (lag_before, words_before), (lag_after, words_after) = before, after
    print(f"round trip before the pause {lag_before * 1000:.1f} ms (words {words_before:.2f}), "
          f"after {lag_after * 1000:.1f} ms (words {words_after:.2f}); paused {paused:.1f} s")
    assert words_before >= 0.7 and words_after >= 0.7, (before, after)
    assert 0.02 < lag_before < 0.4 and abs(lag_after - lag_before) < 0.04, (before, after, pipeline.stats())
