"""Call-quality warnings: thresholds, hysteresis, recovery; and the agent-echo measure itself."""

from __future__ import annotations

import numpy as np

from polyphone.audio.echo_watch import EchoWatch
from polyphone.audio.events import AudioLevels, AudioStats
from polyphone.engine.events import StatsSample
from polyphone.engine.quality import QualityMonitor


def kinds(warnings) -> list[tuple[str, bool]]:
    return [(w.kind, w.active) for w in warnings]


def test_network_figures_raise_after_two_seconds_and_clear_after_three() -> None:
    m = QualityMonitor()
    bad = StatsSample(rtt_ms=450, jitter_ms=40, fraction_lost=26)   # 26/256 = 10 %
    good = StatsSample(rtt_ms=50, jitter_ms=5, fraction_lost=0)
    assert m.feed(bad) == []                                          # one bad second: nothing yet
    raised = m.feed(bad)
    assert sorted(kinds(raised)) == [("jitter", True), ("loss", True), ("rtt", True)]
    assert "round trip is 450 ms" in next(w for w in raised if w.kind == "rtt").message
    assert m.feed(good) == [] and m.feed(bad) == [] and m.feed(good) == [] and m.feed(good) == []
    cleared = m.feed(good)
    assert sorted(kinds(cleared)) == [("jitter", False), ("loss", False), ("rtt", False)]
    assert all("recovered" in w.message for w in cleared)


def test_agent_echo_and_clipping_come_from_the_audio_stats() -> None:
    m = QualityMonitor()
    m.feed(AudioStats(agent_echo=0.8, mic_clipped_frames=5))
    w = m.feed(AudioStats(agent_echo=0.7, mic_clipped_frames=4))
    assert sorted(kinds(w)) == [("agent-echo", True), ("mic-clipping", True)]
    assert "hearing itself" in next(x for x in w if x.kind == "agent-echo").message


def test_a_silent_microphone_is_reported_after_five_seconds_unless_muted() -> None:
    m = QualityMonitor()
    assert all(m.feed(AudioLevels(-90, -30, t=t / 10)) == [] for t in range(50))
    assert kinds(m.feed(AudioLevels(-90, -30, t=5.1))) == [("mic-silent", True)]
    assert kinds(m.feed(AudioLevels(-30, -30, t=5.2))) == [("mic-silent", False)]
    muted = QualityMonitor()
    muted.muted = True
    assert all(muted.feed(AudioLevels(-90, -30, t=t / 10)) == [] for t in range(80))


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, int(48_000 * seconds))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(len(noise)) / 48_000)
    return (6000 * noise * envelope).astype(np.int16)


def feed(watch: EchoWatch, far: np.ndarray, mic: np.ndarray, delay_s: float) -> float:
    for i in range(0, len(far) - 960 + 1, 960):
        t = i / 48_000
        watch.feed_far(far[i:i + 960], t)
        watch.feed_mic(mic[i:i + 960], t + delay_s)
    return watch.check(len(far) / 48_000 + delay_s)[0]


def test_the_agent_echo_measure_finds_the_agent_in_the_mic_and_nothing_else() -> None:
    far = speech_like(2.0, 1)
    shift = int(0.12 * 48_000)   # the echo comes back 120 ms late, 12 dB down, under other noise
    echo = np.concatenate([np.zeros(shift, np.int16), far[:-shift] // 4])
    other = speech_like(2.0, 2) // 4
    assert feed(EchoWatch(), far, echo + other // 4, 0.0) > 0.6
    assert feed(EchoWatch(), far, other, 0.0) < 0.2                   # the caller's own voice
    assert feed(EchoWatch(), np.zeros_like(far), echo, 0.0) == 0.0   # the agent said nothing


def test_clipping_is_counted_per_check() -> None:
    w = EchoWatch()
    loud = np.full(960, 32_767, np.int16)
    for i in range(4):
        w.feed_mic(loud, i * 0.02)
    assert w.check(1.0)[1] == 4 and w.check(2.0)[1] == 0
