"""Per-turn latency you can trust: the demo agent's think time is ground truth.

The demo agent replies `think` ms after its voice-activity detector decides the caller
has finished, which takes a fixed `hangover` (300 ms) of quiet. So a caller should measure

    think + hangover + transport + frames        (within +-30 ms)

where transport (both network legs, Opus both ways, Polyphone's receive path) is measured
separately, in the same test, as the round trip of a tone burst through the echo agent,
and `frames` is the agent's 20 ms granularity: its detector decides once per received
frame, and its reply leaves on its next frame tick, each 0-20 ms late (20 ms on average
for the two). Decomposed with the agent's own timestamps: caller's end -> agent heard the
end 281-301 ms (hangover and one frame's alignment), heard -> reply sent think + 0-20 ms,
sent -> first loud frame here 20-23 ms (one frame, then transport).
Everything runs through the real engine, the real local gateway and real aiortc. (The
example WAVs start and end on frames well above the -40 dBFS voice threshold: a word
that fades out right at the threshold would end "earlier" for whichever side's codec
took a dB off it.)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import numpy as np
import pytest

from helpers.waits import until
from polyphone.audio.analysis import level_dbfs
from polyphone.audio.files import FrameConsumer, PacedSource, frame_to_mono
from polyphone.engine.call import Call
from polyphone.engine.request import CallRequest
from polyphone.localgw.agents import DemoAgent
from polyphone.paths import resource
from polyphone.runs.runner import ScriptRunner
from polyphone.runs.script import load_script

TOKEN = "latency-token-5d8a02"
HANGOVER_MS = 300.0      # DemoAgent's default voice-activity hangover
FRAMES_MS = 20.0         # the agent's frame granularity, on average (see above)
TOLERANCE_MS = 30.0
pytestmark = pytest.mark.integration


class Arrivals(FrameConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.first_loud: float | None = None

    def on_frame(self, frame) -> None:
        if self.first_loud is None and level_dbfs(frame_to_mono(frame)) >= -40:
            self.first_loud = time.monotonic()


async def echo_round_trip_ms(url: str) -> float:
    """Silence, then a 60 ms tone burst: its first loud frame out -> its echo's first loud frame in."""
    lead = 25 * 960   # 0.5 s of silence first
    t = np.arange(2880) / 48_000
    pcm = np.concatenate([np.zeros(lead, np.int16),
                          (8000 * np.sin(2 * np.pi * 800 * t)).astype(np.int16),
                          np.zeros(48_000, np.int16)])
    source, sink = PacedSource(pcm), Arrivals()
    call = Call(CallRequest(url=url, token=TOKEN, mode="echo", fetch_ice_servers=False), source, sink,
                lambda _e: None)
    task = asyncio.ensure_future(call.run())
    await until(lambda: sink.first_loud is not None or task.done(), 5, 0.05, error=None)
    await call.hangup()
    assert (await task).connected and sink.first_loud is not None and source.started_at is not None
    return 1000 * (sink.first_loud - (source.started_at + lead / 48_000))


async def test_measured_latency_is_think_time_plus_transport(gateway_factory, tmp_path) -> None:
    assert DemoAgent().logic.vad.hangover_ms == HANGOVER_MS  # the constant this test relies on
    gw = await gateway_factory(tokens=[TOKEN])
    rtts = [await echo_round_trip_ms(gw.url) for _ in range(3)]
    transport = statistics.median(rtts)
    script = load_script(resource("scripts/question_and_answer.toml"))
    figures = {}
    for think in (300, 600, 1200):
        request = CallRequest(url=gw.url, token=TOKEN, mode="end-to-end", variant_id=f"think-{think}",
                              fetch_ice_servers=False)
        result = await ScriptRunner(script, request, out_dir=tmp_path / f"think-{think}").run()
        assert result.ok, result.error
        measured = [t.response_latency_ms for t in result.turns]
        assert len(measured) == 2 and None not in measured, result.turns
        expected = think + HANGOVER_MS + transport + FRAMES_MS
        figures[think] = {"measured_ms": measured, "expected_ms": round(expected, 1),
                          "error_ms": [round(m - expected, 1) for m in measured]}
    print(json.dumps({"echo_round_trip_ms": [round(r, 1) for r in rtts], "turns": figures}))
    for think, f in figures.items():
        assert all(abs(e) <= TOLERANCE_MS for e in f["error_ms"]), (think, f)
