"""SpeechGain: lifts a quiet caller, but never learns from the far end's echo."""

from __future__ import annotations

import numpy as np

from polyphone.audio.analysis import level_dbfs
from polyphone.audio.gain import FAR_MAX_GAIN_DB, MAX_GAIN_DB, SpeechGain


def tone_frames(dbfs: float, n: int, freq: float = 300.0) -> list[np.ndarray]:
    t = np.arange(480 * n) / 48_000
    amp = 32767 * 10 ** (dbfs / 20) * np.sqrt(2)
    pcm = (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return [pcm[i * 480:(i + 1) * 480].copy() for i in range(n)]


def test_a_quiet_caller_is_lifted_toward_the_target_and_not_beyond_the_cap() -> None:
    gain = SpeechGain()
    frames = tone_frames(-40, 500)  # 5 s
    for f in frames:
        gain.apply(f)
    assert 15 <= gain.gain_db <= MAX_GAIN_DB
    assert level_dbfs(frames[-1]) > -25


def test_a_loud_caller_is_not_amplified_and_never_clipped_into_wraparound() -> None:
    gain = SpeechGain()
    frames = tone_frames(-3, 100)
    for f in frames:
        gain.apply(f)
    assert gain.gain_db == 0.0
    assert frames[-1].max() > 30000 and frames[-1].min() < -30000


def test_it_does_not_adapt_while_the_far_end_talks_and_caps_the_gain_then() -> None:
    gain = SpeechGain()
    far = tone_frames(-20, 300, freq=500)
    near = tone_frames(-45, 300)  # residual echo, or a quiet voice under the agent
    for f_far, f_near in zip(far, near):
        gain.far_end(f_far)
        gain.apply(f_near)
    assert gain.gain_db == 0.0  # nothing learnt from echo
    gain.gain_db = 20.0  # a gain learnt earlier on the caller's voice ...
    frame = tone_frames(-45, 1)[0]
    gain.far_end(far[0])
    gain.apply(frame)  # ... is capped while the far end is active
    assert abs(level_dbfs(frame) - (-45 + FAR_MAX_GAIN_DB)) < 0.5
