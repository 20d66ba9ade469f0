"""Meters, turn latency and the measuring helpers in polyphone.audio.analysis.

(level_dbfs and VoiceActivity are covered in test_agents.py.) Every clock is
injected: frames carry their own times.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.signal_match import best_correlation
from polyphone.audio.analysis import (
    SILENCE_FLOOR_DBFS,
    CallMeters,
    Meter,
    TurnLatencyMeter,
    VoiceActivity,
    best_lag_correlation,
    click_times,
    peak_dbfs,
    segment_correlation,
)
from polyphone.audio.events import AudioLevels, TurnLatency
from polyphone.audio.files import FRAME_SAMPLES, SAMPLE_RATE, read_wav, tone
from polyphone.paths import resource

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 20 ms
SILENCE = np.zeros(FRAME_SAMPLES, np.int16)
LOUD = tone(500.0, FRAME_S, -12.0)


# --- peak_dbfs and Meter -------------------------------------------------------------


def test_peak_dbfs():
    assert peak_dbfs(SILENCE) == peak_dbfs(np.zeros(0, np.int16)) == SILENCE_FLOOR_DBFS
    assert peak_dbfs(np.array([0, -32768], np.int16)) == pytest.approx(0.0)
    assert peak_dbfs(tone(1000.0, 0.01, -20.0)) == pytest.approx(-20.0, abs=0.1)


def test_meter_rises_at_once_and_falls_at_the_release_rate():
    m = Meter(release_db_per_s=30.0, peak_hold_s=0.6)
    assert m.level_dbfs == SILENCE_FLOOR_DBFS
    assert m.feed(LOUD) == pytest.approx(-15.0, abs=0.1)  # -12 dBFS peak sine: RMS -15
    assert m.peak_dbfs == pytest.approx(-12.0, abs=0.1)
    for _ in range(25):                                     # 0.5 s of silence
        m.feed(SILENCE)
    assert m.last_dbfs == SILENCE_FLOOR_DBFS
    assert m.level_dbfs == pytest.approx(-15.0 - 15.0, abs=0.1)
    assert m.peak_dbfs == pytest.approx(-12.0, abs=0.1)     # still held
    for _ in range(25):
        m.feed(SILENCE)
    assert m.level_dbfs == pytest.approx(-45.0, abs=0.1)
    assert m.peak_dbfs < -20.0                              # hold over: falling
    m.feed(tone(500.0, FRAME_S, -30.0))
    assert m.level_dbfs == pytest.approx(-33.0, abs=0.1)    # louder than the fall: jumps
    for _ in range(300):
        m.feed(SILENCE)
    assert m.level_dbfs == m.peak_dbfs == SILENCE_FLOOR_DBFS
    m.reset()
    assert m.peak_dbfs == SILENCE_FLOOR_DBFS


def test_meter_takes_frames_of_any_size_and_a_precomputed_level():
    m = Meter(release_db_per_s=10.0)
    m.feed(tone(500.0, 0.005, -6.0))
    m.feed(np.zeros(SAMPLE_RATE, np.int16))                # one 1 s frame: 10 dB down
    assert m.level_dbfs == pytest.approx(-9.0 - 10.0, abs=0.1)
    m.feed(SILENCE, rms_dbfs=-3.0)
    assert m.level_dbfs == -3.0 and m.last_dbfs == -3.0
    with pytest.raises(ValueError):
        Meter(release_db_per_s=0)


# --- TurnLatencyMeter: edges -------------------------------------------------------------


def test_reply_latency_from_caller_end_to_agent_start():
    m = TurnLatencyMeter()
    m.caller_started(10.0)
    assert m.caller_stopped(12.0) is None
    event = m.agent_started(12.8)
    assert event == TurnLatency(1, pytest.approx(800.0), t=12.8)
    m.agent_stopped(14.0)
    m.caller_started(15.0)
    m.caller_stopped(16.0)
    assert m.agent_started(16.25).turn == 2 and m.last.latency_ms == pytest.approx(250.0)
    assert m.turns == 2


def test_agent_speech_that_began_before_the_caller_stopped_is_not_a_reply():
    m = TurnLatencyMeter()
    m.caller_started(10.0)
    assert m.agent_started(11.0) is None        # overlap: the agent talks over the caller
    assert m.caller_stopped(12.0) is None
    m.agent_stopped(13.0)
    assert m.agent_started(14.0) is None        # not a reply to that turn either
    assert m.turns == 0


def test_agent_talking_when_the_caller_barges_in_then_a_real_reply():
    m = TurnLatencyMeter()
    m.agent_started(1.0)                          # greeting
    m.caller_started(2.0)                         # barge-in
    m.agent_stopped(2.2)                          # the agent yields
    assert m.caller_stopped(4.0) is None
    assert m.agent_started(4.5).latency_ms == pytest.approx(500.0)


def test_caller_resuming_restarts_the_wait():
    m = TurnLatencyMeter()
    m.caller_started(1.0)
    m.caller_stopped(2.0)
    m.caller_started(2.4)                         # a pause, not the end of the turn
    m.caller_stopped(3.0)
    assert m.agent_started(3.6).latency_ms == pytest.approx(600.0)


def test_reply_noticed_before_the_end_of_speech_is_noticed():
    """A VAD reports the caller's end a hangover late: the reply may be seen first."""
    m = TurnLatencyMeter()
    m.caller_started(1.0)
    assert m.agent_started(2.2) is None          # the caller's VAD still says speaking...
    event = m.caller_stopped(2.0)                # ...but the speech had ended at 2.0
    assert event.turn == 1 and event.latency_ms == pytest.approx(200.0) and event.t == 2.2


def test_a_reply_too_late_is_not_counted():
    m = TurnLatencyMeter(max_latency_ms=5_000)
    m.caller_started(1.0)
    m.caller_stopped(2.0)
    assert m.agent_started(8.0) is None and m.turns == 0


def test_update_with_speaking_flags():
    m = TurnLatencyMeter()
    assert m.update(0.0, True, False) is None
    assert m.update(1.0, False, False) is None
    event = m.update(1.7, False, True)
    assert event.turn == 1 and event.latency_ms == pytest.approx(700.0)
    assert m.update(2.0, False, False) is None
    assert m.update(3.0, True, True) is None     # both at once: overlap
    assert m.update(3.5, False, True) is None
    m.update(4.0, False, False)
    assert m.update(5.0, True, False) is None
    assert m.update(6.0, False, True).latency_ms == pytest.approx(0.0)  # same instant


# --- TurnLatencyMeter: frames --------------------------------------------------------------


def frames(pattern: str) -> list[np.ndarray]:
    """'L' loud frame, '.' silent frame, 20 ms each."""
    return [LOUD if c == "L" else SILENCE for c in pattern]


def feed(m: TurnLatencyMeter, caller: list[np.ndarray], agent: list[np.ndarray], t0: float = 50.0,
         order: str = "interleaved") -> list[TurnLatency]:
    events = []
    if order == "interleaved":
        for i, (c, a) in enumerate(zip(caller, agent)):
            events += [m.feed_caller(c, t0 + i * FRAME_S), m.feed_agent(a, t0 + i * FRAME_S)]
    elif order == "caller first":
        events += [m.feed_caller(c, t0 + i * FRAME_S) for i, c in enumerate(caller)]
        events += [m.feed_agent(a, t0 + i * FRAME_S) for i, a in enumerate(agent)]
    else:
        events += [m.feed_agent(a, t0 + i * FRAME_S) for i, a in enumerate(agent)]
        events += [m.feed_caller(c, t0 + i * FRAME_S) for i, c in enumerate(caller)]
    return [e for e in events if e is not None]


@pytest.mark.parametrize("order", ["interleaved", "caller first", "agent first"])
@pytest.mark.parametrize("gap_frames", [5, 35])  # 100 ms (shorter than the hangover), 700 ms
def test_frames_measure_from_last_loud_caller_frame_to_first_loud_agent_frame(order, gap_frames):
    caller = "." * 5 + "L" * 50 + "." * (gap_frames + 60)
    agent = "." * (5 + 50 + gap_frames) + "L" * 40 + "." * 20
    m = TurnLatencyMeter(caller_vad=VoiceActivity(hangover_ms=300),
                         agent_vad=VoiceActivity(hangover_ms=300))
    events = feed(m, frames(caller), frames(agent), order=order)
    assert len(events) == 1
    assert events[0].turn == 1
    assert events[0].latency_ms == pytest.approx(gap_frames * 20.0, abs=0.01)
    assert events[0].t == pytest.approx(50.0 + (5 + 50 + gap_frames) * FRAME_S)


def test_frames_overlap_is_ignored_and_next_turn_counts():
    caller = "L" * 30 + "." * 100 + "L" * 20 + "." * 60
    agent = "." * 20 + "L" * 30 + "." * 140 + "L" * 20   # starts over the caller; later a reply
    m = TurnLatencyMeter()
    events = feed(m, frames(caller), frames(agent[:len(caller)]))
    assert [e.turn for e in events] == [1]
    assert events[0].latency_ms == pytest.approx(40 * 20.0, abs=0.01)  # 150 -> 190 frames


# --- CallMeters ---------------------------------------------------------------------------


def test_call_meters_levels_speaking_and_turns():
    cm = CallMeters(hangover_ms=100)
    t = 0.0
    for _ in range(10):
        assert cm.feed_input(LOUD, t) is None
        cm.feed_output(SILENCE, t)
        t += FRAME_S
    snap = cm.snapshot(t)
    assert isinstance(snap, AudioLevels) and snap.t == t
    assert snap.input_speaking and not snap.output_speaking
    assert snap.input_dbfs == pytest.approx(-15.0, abs=0.1) and snap.output_dbfs == SILENCE_FLOOR_DBFS
    events = []
    for i in range(40):
        events.append(cm.feed_input(SILENCE, t))
        events.append(cm.feed_output(LOUD if i >= 20 else SILENCE, t))
        t += FRAME_S
    events = [e for e in events if e]
    assert len(events) == 1 and events[0].latency_ms == pytest.approx(400.0, abs=0.01)
    snap = cm.snapshot(t)
    assert not snap.input_speaking and snap.output_speaking and snap.input_dbfs < -15.0


# --- best_lag_correlation and click_times -----------------------------------------------------


def test_best_lag_correlation_finds_delay_and_similarity():
    rng = np.random.default_rng(1)
    sent = (rng.standard_normal(SAMPLE_RATE // 2) * 3000).astype(np.int16)
    lag = 591  # 12.3 ms
    received = np.concatenate([np.zeros(lag, np.int16), sent // 4, np.zeros(1000, np.int16)])
    corr, lag_s = best_lag_correlation(sent, received, max_lag_s=0.1)
    assert corr > 0.999 and lag_s == pytest.approx(lag / SAMPLE_RATE)
    noisy = received + (rng.standard_normal(len(received)) * 750).astype(np.int16)
    corr, lag_s = best_lag_correlation(sent, noisy, max_lag_s=0.1)
    assert 0.6 < corr < 0.8 and lag_s == pytest.approx(lag / SAMPLE_RATE)
    assert best_lag_correlation(sent, received, max_lag_s=0.005)[1] <= 0.005  # outside the window
    assert best_lag_correlation(sent, np.zeros(100, np.int16)) == (0.0, 0.0)
    assert best_lag_correlation(np.zeros(0, np.int16), received) == (0.0, 0.0)
    assert best_correlation(sent, received, SAMPLE_RATE, 0.1) == best_lag_correlation(sent, received, 0.1)


def test_segment_correlation_forgives_a_drift_correction_but_not_other_audio():
    rng = np.random.default_rng(2)
    sent = read_wav(resource("sounds/greeting.wav"))[: 3 * SAMPLE_RATE]
    lag = 2400  # 50 ms
    # played back 0.5 % slower (the playout's largest stretch): 15 ms behind by the end
    stretched = np.interp(np.arange(0, len(sent), 1 / 1.005), np.arange(len(sent)), sent)
    received = np.concatenate([np.zeros(lag), stretched]).astype(np.int16)
    whole, _ = best_lag_correlation(sent, received, max_lag_s=0.2)
    assert whole < 0.5  # one lag for the clip: the drift ruins it
    assert segment_correlation(sent, received, lag / SAMPLE_RATE) > 0.85
    other = (rng.standard_normal(len(received)) * 3000).astype(np.int16)
    assert segment_correlation(sent, other, lag / SAMPLE_RATE) < 0.2
    assert segment_correlation(np.zeros(SAMPLE_RATE, np.int16), received, 0.05) == 0.0


def test_segment_correlation_with_a_recording_that_began_late():
    """A negative lag: the first second was sent before the recording started. Those words are
    left out; they must not be searched for across the whole recording (a negative slice end
    wraps around in numpy)."""
    sent = read_wav(resource("sounds/greeting.wav"))[: 3 * SAMPLE_RATE]
    received = sent[SAMPLE_RATE:]
    assert segment_correlation(sent, received, -1.0) > 0.95


def chirp(ms: float = 5.0, level: float = -6.0) -> np.ndarray:
    n = int(SAMPLE_RATE * ms / 1000)
    t = np.arange(n) / SAMPLE_RATE
    x = np.sin(2 * np.pi * (1000 * t + 0.5 * 4e5 * t * t)) * np.hanning(n)
    return (x * 32767 * 10 ** (level / 20)).astype(np.int16)


def test_click_times_finds_each_click_once():
    x = np.zeros(3 * SAMPLE_RATE, np.int16)
    when = [0.5, 1.25, 2.0, 2.9]
    for w in when:
        c = chirp()
        i = int(w * SAMPLE_RATE)
        x[i:i + len(c)] = c
    x[int(1.6 * SAMPLE_RATE)] = 300                     # a small blip below the threshold
    found = click_times(x, SAMPLE_RATE, threshold_dbfs=-30.0)
    assert len(found) == len(when)
    for f, w in zip(found, when):
        assert w <= f < w + 0.002                        # the chirp's envelope crosses quickly
    assert click_times(x, SAMPLE_RATE, threshold_dbfs=0.0) == []
    assert click_times(np.zeros(0, np.int16)) == []
    grouped = click_times(x, SAMPLE_RATE, min_gap_s=0.8)   # only 2.9 follows a gap of 0.8 s
    assert grouped == [pytest.approx(found[0]), pytest.approx(found[3])]
