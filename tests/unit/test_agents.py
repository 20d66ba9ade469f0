"""Unit tests: levels, voice activity, the demo agent's turn-taking, agent tracks, paths.

No sockets: the turn-taking is driven frame by frame with an injected clock.
"""

from __future__ import annotations

import asyncio
import fractions
import math

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from helpers.waits import until
from polyphone.audio.analysis import SILENCE_FLOOR_DBFS, VoiceActivity, level_dbfs
from polyphone.audio.files import FRAME_SAMPLES, SAMPLE_RATE, make_frame, tone
from polyphone.localgw.agents import DemoAgent, EchoAgent, agent_kind_for, load_greeting, make_agent
from polyphone.localgw.turns import AgentState, TurnTaker
from polyphone.paths import resource

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
SILENCE = np.zeros(FRAME_SAMPLES, np.int16)


def loud(dbfs: float = -12.0, freq: float = 500.0) -> np.ndarray:
    return tone(freq, FRAME_S, dbfs)


# --- level_dbfs ------------------------------------------------------------------


def test_level_dbfs():
    assert level_dbfs(SILENCE) == SILENCE_FLOOR_DBFS == -120.0
    assert level_dbfs(np.zeros(0, np.int16)) == -120.0
    full_sine = tone(1000.0, 0.1, 0.0)
    assert level_dbfs(full_sine) == pytest.approx(-3.01, abs=0.05)
    assert level_dbfs(tone(1000.0, 0.1, -20.0)) == pytest.approx(-23.01, abs=0.05)
    assert level_dbfs(np.full(480, -32768, np.int16)) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(np.ones(480, np.int16)) > -120.0  # quietest non-silence is above the floor


# --- VoiceActivity -----------------------------------------------------------------


def feed_all(vad: VoiceActivity, frames: list[np.ndarray]) -> list[str | None]:
    return [vad.feed(f) for f in frames]


def test_vad_needs_two_loud_frames_to_start():
    vad = VoiceActivity()
    assert feed_all(vad, [SILENCE] * 5 + [loud()] + [SILENCE]) == [None] * 7
    assert not vad.speaking
    assert feed_all(vad, [loud(), loud()]) == [None, "start"]
    assert vad.speaking


def test_vad_end_after_hangover():
    vad = VoiceActivity(hangover_ms=300)
    feed_all(vad, [loud(), loud()])
    # 14 quiet frames (280 ms) keep the turn; the 15th (300 ms) ends it.
    assert feed_all(vad, [SILENCE] * 14) == [None] * 14 and vad.speaking
    assert vad.feed(SILENCE) == "end" and not vad.speaking


def test_vad_pause_shorter_than_hangover_does_not_end():
    vad = VoiceActivity(hangover_ms=100)
    transitions = feed_all(vad, [loud()] * 3 + [SILENCE] * 4 + [loud()] * 3 + [SILENCE] * 5)
    assert transitions.count("start") == 1
    assert transitions.count("end") == 1 and transitions[-1] == "end"


def test_vad_threshold_and_options():
    vad = VoiceActivity(threshold_dbfs=-30.0, start_frames=1)
    assert vad.feed(loud(-40.0)) is None  # below the threshold
    assert vad.feed(loud(-20.0)) == "start"
    vad.reset()
    assert not vad.speaking
    with pytest.raises(ValueError):
        VoiceActivity(start_frames=0)


# --- TurnTaker -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def tick(self) -> float:
        self.now += FRAME_S
        return self.now


def run(turns: TurnTaker, clock: Clock, caller: list[np.ndarray]) -> tuple[list[np.ndarray], list]:
    """One caller frame in and one agent frame out per 20 ms tick."""
    out, events = [], []
    for frame in caller:
        now = clock.tick()
        events.append(turns.hear(frame, now))
        out.append(turns.speak(FRAME_SAMPLES, now))
    return out, events


def test_greeting_plays_first_then_silence():
    greeting = tone(700.0, 0.1)  # 5 frames
    turns = TurnTaker(greeting, think_ms=600)
    assert turns.state is AgentState.SPEAKING
    out, _ = run(turns, Clock(), [SILENCE] * 8)
    assert np.array_equal(np.concatenate(out[:5]), greeting)
    assert all(not f.any() for f in out[5:])
    assert turns.state is AgentState.LISTENING
    assert turns.turns == 0 and turns.barge_ins == 0


def test_reply_after_think_time_is_the_utterance():
    turns = TurnTaker(None, think_ms=600, vad=VoiceActivity(hangover_ms=300))
    clock = Clock()
    speech = [loud(-12.0, 400.0 + 20 * i) for i in range(10)]  # 200 ms, every frame distinct
    out, events = run(turns, clock, speech + [SILENCE] * 15)
    assert events.count("start") == 1 and events[-1] == "end"
    end_time = clock.now
    assert turns.state is AgentState.THINKING and turns.utterances == 1
    # Silent until the think time is over...
    out, _ = run(turns, clock, [SILENCE] * 29)
    assert all(not f.any() for f in out) and turns.turns == 0
    # ...then the caller's words come back, in order.
    out, _ = run(turns, clock, [SILENCE] * 14)
    assert clock.now - end_time >= 0.6 and turns.turns == 1
    first = next(i for i, f in enumerate(out) if f.any())
    played = np.concatenate(out[first:first + 10])
    assert np.array_equal(played, np.concatenate(speech))
    assert turns.state is AgentState.LISTENING  # done: 200 ms speech + 60 ms tail


def test_barge_in_stops_the_agent_at_once():
    greeting = tone(700.0, 2.0)
    turns = TurnTaker(greeting, think_ms=100)
    clock = Clock()
    out, _ = run(turns, clock, [SILENCE] * 5)
    assert all(f.any() for f in out)
    out, events = run(turns, clock, [loud(), loud(), loud()])
    assert events[1] == "barge-in" and turns.barge_ins == 1
    assert out[0].any() and not out[1].any() and not out[2].any()  # silent from that frame on
    assert turns.state is AgentState.LISTENING
    # The interruption is a turn like any other: it is said back.
    out, _ = run(turns, clock, [SILENCE] * 30)
    assert turns.turns == 1 and any(f.any() for f in out)


def test_barge_in_during_a_reply():
    turns = TurnTaker(None, think_ms=0, vad=VoiceActivity(hangover_ms=100))
    clock = Clock()
    run(turns, clock, [loud()] * 50 + [SILENCE] * 5)   # 1 s utterance, then end
    out, _ = run(turns, clock, [SILENCE] * 3)
    assert turns.turns == 1 and all(f.any() for f in out)
    _, events = run(turns, clock, [loud(), loud()])
    assert events == [None, "barge-in"] and turns.barge_ins == 1
    assert not turns.speak(FRAME_SAMPLES, clock.tick()).any()


def test_speech_resumed_while_thinking_joins_the_utterance():
    turns = TurnTaker(None, think_ms=600, vad=VoiceActivity(hangover_ms=100))
    clock = Clock()
    _, events = run(turns, clock, [loud()] * 5 + [SILENCE] * 5)
    assert events[-1] == "end" and turns.state is AgentState.THINKING
    _, events = run(turns, clock, [loud()] * 5 + [SILENCE] * 5)  # within the think time
    assert "start" in events and events[-1] == "end"
    out, _ = run(turns, clock, [SILENCE] * 60)
    assert turns.turns == 1 and turns.utterances == 2
    voiced = sum(1 for f in out if f.any())
    assert voiced >= 10  # both parts said back in one reply


def test_utterance_length_is_bounded():
    turns = TurnTaker(None, think_ms=0, max_utterance_s=0.5, vad=VoiceActivity(hangover_ms=20))
    clock = Clock()
    out1, _ = run(turns, clock, [loud()] * 100 + [SILENCE] * 2)  # 2 s of speech
    out2, _ = run(turns, clock, [SILENCE] * 60)
    assert turns.turns == 1
    assert sum(1 for f in out1[100:] + out2 if f.any()) == 25  # 0.5 s said back


# --- agents ----------------------------------------------------------------------


class FakeTrack(MediaStreamTrack):
    """A remote track stand-in: gives `frames`, then ends."""

    kind = "audio"

    def __init__(self, frames: list[AudioFrame]) -> None:
        super().__init__()
        self._frames = list(frames)

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0)
        if not self._frames:
            self.stop()
            raise MediaStreamError
        return self._frames.pop(0)


async def test_echo_agent_returns_frames_with_monotonic_pts():
    frames = [make_frame(loud(), pts) for pts in (123456, 999, 5_000_000)]
    agent = EchoAgent()
    agent.start(FakeTrack(frames))
    got = [await agent.output.recv() for _ in range(3)]
    assert [f.pts for f in got] == [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    with pytest.raises(MediaStreamError):
        await agent.output.recv()
    await agent.stop()
    assert agent.counters()["frames"] == 3


async def test_echo_agent_reads_the_caller_even_when_nobody_pulls():
    agent = EchoAgent()
    agent.start(FakeTrack([make_frame(loud(), i) for i in range(30)]))
    await until(lambda: agent.frames_heard == 30, 1.0, 0.005, error=None)
    assert agent.frames_heard == 30
    assert agent.output.dropped >= 20  # only the last 200 ms are kept
    await agent.stop()


async def test_demo_agent_reads_every_incoming_frame():
    frames = [make_frame(loud() if i < 20 else SILENCE, i * FRAME_SAMPLES) for i in range(40)]
    frames.append(make_frame(np.zeros(441, np.int16), 0, rate=22_050))  # odd rate: resampled
    agent = DemoAgent(think_ms=50, greeting=np.zeros(0, np.int16))
    agent.start(FakeTrack(frames))
    await until(lambda: agent.frames_heard == len(frames), 1.0, 0.005, error=None)
    assert agent.frames_heard == len(frames) and agent.bad_frames == 0
    assert agent.logic.utterances == 1
    frame = await agent.output.recv()
    assert frame.sample_rate == SAMPLE_RATE and frame.samples == FRAME_SAMPLES
    assert frame.time_base == fractions.Fraction(1, SAMPLE_RATE)
    await agent.stop()
    assert agent.output.readyState == "ended"


def test_agent_choice_by_mode():
    assert agent_kind_for("echo") == "echo"
    assert agent_kind_for("end-to-end") == agent_kind_for("traditional") == agent_kind_for(None) == "demo"
    assert agent_kind_for("echo", forced="demo") == "demo"
    assert isinstance(make_agent("echo"), EchoAgent)
    with pytest.raises(ValueError):
        make_agent("karaoke")


def test_bundled_greeting():
    path = resource("sounds/greeting.wav")
    assert path.is_file() and path.stat().st_size < 400_000
    pcm = load_greeting()
    assert 1.0 < len(pcm) / SAMPLE_RATE < 6.0
    assert level_dbfs(pcm) > -35.0
    with pytest.raises(FileNotFoundError, match="no-such"):
        resource("sounds/no-such.wav")
    with pytest.raises(FileNotFoundError):
        resource("../pyproject.toml")
    assert math.isfinite(level_dbfs(pcm))
