"""The playout buffer's timing logic, driven by a simulated network and sound card clock."""

from __future__ import annotations

import numpy as np

from polyphone.audio.playout import JitterEstimator, PlayoutBuffer

FRAME = 960  # 20 ms at 48 kHz


def frame(value: int = 1000) -> np.ndarray:
    return np.full(FRAME, value, dtype=np.int16)


def simulate(buf: PlayoutBuffer, seconds: float, *, jitter_ms: float = 0.0, lose: set[int] = (),
             card_ppm: float = 0.0, pause: tuple[float, float] | None = None,
             seed: int = 1, block_ms: int = 10, late: dict[int, float] | None = None,
             quiet_from: int | None = None) -> list[float]:
    """Frames every 20 ms (plus jitter), a card pulling 10 ms blocks; returns the fill per block.

    `late`: frame index -> extra delay (s); frames from `quiet_from` on are silent."""
    rng = np.random.default_rng(seed)
    events = []
    n_frames = int(seconds / 0.02)
    for i in range(n_frames):
        t_send = i * 0.02
        if pause and pause[0] <= t_send < pause[1]:
            continue
        if i in lose:
            continue
        extra = (late or {}).get(i, 0.0)
        events.append((t_send + abs(rng.normal(0, jitter_ms / 1000)) + 0.005 + extra, "frame", i))
    block = buf.out_rate * block_ms // 1000
    period = block_ms / 1000 / (1 + card_ppm / 1e6)
    t = period
    while t < seconds:
        events.append((t, "pull", 0))
        t += period
    events.sort()
    out = np.zeros(block, dtype=np.int16)
    fills = []
    corrections = buf.corrections_trace = []  # corrected_frames after each pull
    now = [0.0]
    buf.clock = lambda: now[0]
    for t, kind, i in events:
        now[0] = t
        if kind == "frame":
            buf.push(frame(0 if quiet_from is not None and i >= quiet_from else 1000), i * FRAME, t)
        else:
            buf.pull_into(out)
            fills.append(buf.fill_ms)
            corrections.append(buf.corrected_frames)
    return fills


def test_steady_stream_settles_at_the_minimum_target_without_underruns() -> None:
    buf = PlayoutBuffer()
    fills = simulate(buf, 10)
    assert buf.underruns == 0
    assert buf.target_ms == buf.min_target_ms
    assert max(fills[200:]) <= buf.min_target_ms + 25


def test_steady_audio_is_passed_through_untouched_whatever_the_card_block() -> None:
    for block_ms in (5, 10, 20, 40):
        buf = PlayoutBuffer()
        simulate(buf, 12, block_ms=block_ms)
        trace = buf.corrections_trace
        settled = trace[len(trace) // 6]  # after the first 2 s
        assert trace[-1] == settled, (block_ms, settled, trace[-1])
        assert buf.underruns == 0, block_ms


def test_jitter_raises_the_target_and_keeps_underruns_rare() -> None:
    buf = PlayoutBuffer()
    simulate(buf, 20, jitter_ms=15)
    assert buf.target_ms > 45
    assert buf.underruns <= 5


def test_a_lost_packet_is_concealed_and_the_delay_returns_to_baseline() -> None:
    buf = PlayoutBuffer()
    fills = simulate(buf, 6, lose={100})
    assert 15 <= buf.concealed_ms <= 25
    assert buf.underruns == 0
    baseline = np.mean(fills[100:190])
    after = np.mean(fills[350:440])  # 1.5 s after the loss
    assert abs(after - baseline) < 10


def test_a_pause_is_not_waited_for_and_the_tail_plays_out() -> None:
    buf = PlayoutBuffer()
    fills = simulate(buf, 6, pause=(2.0, 4.0))
    # during the pause the buffer empties (the tail is played, not held) ...
    assert min(fills[220:380]) == 0
    # ... and nothing was concealed: a 2 s gap is a pause, not a loss
    assert buf.concealed_ms == 0
    # after it, playback resumes at the target
    assert 20 <= np.mean(fills[-100:]) <= buf.min_target_ms + 25


def test_clock_drift_is_compensated_so_the_delay_stays_bounded() -> None:
    for ppm in (+3000, -3000):  # a sound card 0.3 % fast or slow: 18 s an hour off
        buf = PlayoutBuffer()
        fills = simulate(buf, 60, card_ppm=ppm)
        late = fills[-1000:]
        assert max(late) < buf.target_ms + 40, ppm
        assert buf.underruns <= 3, ppm
        assert (buf.correction_ppm > 0) == (ppm > 0), (ppm, buf.correction_ppm)


def test_a_burst_is_drained_to_a_bounded_delay() -> None:
    buf = PlayoutBuffer()
    simulate(buf, 1)
    for i in range(50, 70):  # a second's worth arrives at once
        buf.push(frame(), i * FRAME, 1.0)
    assert buf.fill_ms <= buf.max_target_ms + 60 + 1


def test_late_frames_are_dropped() -> None:
    buf = PlayoutBuffer()
    buf.push(frame(), 10 * FRAME, 0.0)
    before = buf.ring.available
    assert len(buf.push(frame(), 9 * FRAME, 0.01)) == 0
    assert buf.ring.available == before


def test_jitter_estimator_matches_rfc3550_on_a_known_pattern() -> None:
    est = JitterEstimator()
    for i in range(2000):
        est.update(i * 0.02 + (0.01 if i % 2 else 0.0), i * 0.02)
    assert abs(est.jitter - 0.01) < 0.001


def test_playout_at_another_device_rate() -> None:
    buf = PlayoutBuffer(out_rate=44_100)
    simulate(buf, 3)
    assert buf.underruns == 0 and buf.ring.available > 0



def test_a_single_stall_does_not_raise_the_target_for_long() -> None:
    buf = PlayoutBuffer()
    out = np.zeros(480, dtype=np.int16)
    now = [0.0]
    buf.clock = lambda: now[0]
    t_pull = 0.0
    for i in range(300):  # 6 s of frames every 20 ms; one 70 ms network stall at 2 s
        arrive = max(i * 0.02, 2.07) if 100 <= i <= 103 else i * 0.02
        while t_pull < arrive:
            now[0] = t_pull
            buf.pull_into(out)
            t_pull += 0.01
        now[0] = arrive
        buf.push(frame(), i * FRAME, arrive)
    assert buf.target_ms < buf.min_target_ms + 5  # an outlier, not jitter
    assert buf.fill_ms <= buf.min_target_ms + 25


def test_the_step_a_jitter_spike_leaves_goes_at_the_next_pause() -> None:
    spike = {100: 0.06, 101: 0.04, 102: 0.02}  # three frames 60/40/20 ms late at t = 2 s
    talking = PlayoutBuffer()
    fills = simulate(talking, 12, late=spike)
    baseline = np.mean(fills[100:190])
    assert talking.underruns == 1
    # Speech without a pause: the step stays inside the dead band, untouched (bit for bit) ...
    assert np.mean(fills[-100:]) - baseline > 10
    paused = PlayoutBuffer()
    fills = simulate(paused, 12, late=spike, quiet_from=300)  # the agent stops at t = 6 s
    # ... and the first pause takes it out: within 2 s the delay is back at its baseline.
    assert abs(np.mean(fills[800:1000]) - baseline) < 6, (baseline, np.mean(fills[800:1000]))
    assert paused.underruns == 1
