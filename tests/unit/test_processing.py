"""AudioProcessor: libwebrtc's echo canceller, noise suppressor and gain control.

A synthetic call: a speech-like far-end signal is "played to the speaker" and
comes back into the "microphone" through a short room response, delayed and
attenuated; optional near-end speech is added. All offline, 10 ms at a time,
as the audio path would do it.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import sys
import time

import numpy as np
import pytest

from polyphone.audio.analysis import best_lag_correlation, level_dbfs
from polyphone.audio.processing import AudioProcessor, ProcessingSettings

RATE = 48_000
FRAME = 480
SETTLE = 2 * RATE  # measure after the canceller has converged

HAVE_LIVEKIT = importlib.util.find_spec("livekit") is not None
needs_livekit = pytest.mark.skipif(not HAVE_LIVEKIT, reason="the livekit wheel is not installed")


def speech_like(seconds: float, f0: float, level: float, seed: int) -> np.ndarray:
    """Voiced, formant-shaped harmonics with a gliding pitch, in syllables and pauses."""
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t + seed))) / RATE
    x = np.zeros(n)
    formants = ((700, 130), (1200, 150), (2600, 250))
    for k in range(1, int(7000 // f0)):
        weight = sum(np.exp(-0.5 * ((k * f0 - f) / b) ** 2) for f, b in formants) + 0.05
        x += weight * np.sin(k * phase) / np.sqrt(k)
    x += 0.05 * rng.standard_normal(n)
    syllables = np.clip(1.5 * np.sin(2 * np.pi * 3.0 * t + seed), 0, 1)
    x *= syllables * (0.5 + 0.5 * (np.sin(2 * np.pi * 0.25 * t + seed) > -0.6))
    x /= np.sqrt(np.mean(x ** 2))
    return (x * 32768 * 10 ** (level / 20)).astype(np.int16)


FAR = speech_like(6.0, 120.0, -18.0, seed=3)
NEAR = speech_like(6.0, 200.0, -26.0, seed=7)


def echo_of(far: np.ndarray, delay_s: float, gain_db: float = -10.0) -> np.ndarray:
    """The far end as the microphone hears it: room reflections, delay, attenuation."""
    room = np.zeros(int(0.02 * RATE))
    room[0], room[int(0.003 * RATE)], room[int(0.011 * RATE)] = 1.0, 0.4, -0.25
    wet = np.convolve(far.astype(np.float64), room)[:len(far)] * 10 ** (gain_db / 20)
    return np.concatenate([np.zeros(int(delay_s * RATE)), wet])[:len(far)]


def call(proc: AudioProcessor, far: np.ndarray, mic: np.ndarray, chunk: int = FRAME) -> np.ndarray:
    """Play `far` and capture `mic` in step, `chunk` samples at a time."""
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    out = np.empty_like(mic16)
    for i in range(0, len(mic16), chunk):
        proc.process_render(far[i:i + chunk])
        proc.process_capture(mic16[i:i + chunk], out[i:i + chunk])
    return out


def reduction_db(before: np.ndarray, after: np.ndarray) -> float:
    return level_dbfs(before[SETTLE:].astype(np.int16)) - level_dbfs(after[SETTLE:])


@needs_livekit
@pytest.mark.parametrize("delay_s", [0.03, 0.06])
def test_echo_is_cancelled_by_default(delay_s):
    proc = AudioProcessor()
    assert proc.available and proc.active and proc.why == ""
    mic = echo_of(FAR, delay_s)
    out = call(proc, FAR, mic)
    assert reduction_db(mic, out) >= 25.0
    assert proc.frames_rendered == proc.frames_captured == len(FAR) // FRAME


@needs_livekit
def test_echo_cancellation_alone_and_with_a_delay_hint():
    proc = AudioProcessor(noise_suppression=False, gain_control=False)
    proc.set_delay_ms(45.0)
    assert proc.delay_ms == 45
    mic = echo_of(FAR, 0.045)
    assert reduction_db(mic, call(proc, FAR, mic)) >= 25.0


@needs_livekit
def test_without_echo_cancellation_the_echo_stays():
    proc = AudioProcessor(echo_cancellation=False)  # noise suppression and AGC still on
    mic = echo_of(FAR, 0.04)
    assert reduction_db(mic, call(proc, FAR, mic)) < 6.0
    proc = AudioProcessor(False, False, False)
    assert not proc.active
    out = call(proc, FAR, mic)
    assert np.array_equal(out, mic.astype(np.int16))  # nothing on: untouched


@needs_livekit
def test_near_end_speech_is_preserved_without_far_end():
    proc = AudioProcessor(gain_control=False)
    silence = np.zeros_like(NEAR)
    out = call(proc, silence, NEAR.astype(np.float64))
    assert abs(level_dbfs(out[RATE:]) - level_dbfs(NEAR[RATE:])) < 3.0
    corr, lag = best_lag_correlation(NEAR[RATE:5 * RATE], out[RATE:], max_lag_s=0.1)
    assert corr > 0.85 and lag < 0.03  # same speech, at most a few ms of processing delay


@needs_livekit
def test_gain_control_lifts_a_quiet_talker():
    quiet = speech_like(6.0, 200.0, -45.0, seed=5)
    proc = AudioProcessor(echo_cancellation=False, noise_suppression=False, gain_control=True)
    out = proc.process_capture(quiet)
    assert level_dbfs(out[3 * RATE:]) > level_dbfs(quiet[3 * RATE:]) + 10.0


@needs_livekit
def test_switching_at_run_time_keeps_the_call_going():
    proc = AudioProcessor()
    mic = echo_of(FAR, 0.04)
    first = call(proc, FAR, mic)
    assert reduction_db(mic, first) >= 25.0

    proc.configure(echo_cancellation=False)
    assert proc.enabled == ProcessingSettings(False, True, True) and proc.active
    second = call(proc, FAR, mic)
    assert reduction_db(mic, second) < 6.0

    proc.configure(echo_cancellation=True, gain_control=False)
    assert (proc.echo_cancellation, proc.noise_suppression, proc.gain_control) == (True, True, False)
    third = call(proc, FAR, mic)
    assert reduction_db(mic, third) >= 25.0

    proc.configure(echo_cancellation=False, noise_suppression=False)
    assert not proc.active and not proc.enabled.any
    assert np.array_equal(call(proc, FAR, mic), mic.astype(np.int16))
    proc.configure()  # nothing changes
    assert not proc.active


@needs_livekit
def test_a_long_chunk_is_the_same_as_its_10ms_frames():
    mic = NEAR[:2 * RATE]
    a, b = AudioProcessor(), AudioProcessor()
    ten = np.concatenate([a.process_capture(mic[i:i + FRAME]) for i in range(0, len(mic), FRAME)])
    assert np.array_equal(ten, b.process_capture(mic))


@needs_livekit
def test_render_takes_any_length_and_keeps_the_remainder():
    proc = AudioProcessor()
    for i in range(0, 10 * 441, 441):
        proc.process_render(FAR[i:i + 441])
    assert proc.frames_rendered == (10 * 441) // FRAME


@needs_livekit
def test_capture_needs_whole_10ms_frames():
    proc = AudioProcessor()
    assert len(proc.process_capture(np.zeros(0, np.int16))) == 0
    with pytest.raises(ValueError, match="480"):
        proc.process_capture(np.zeros(960 + 1, np.int16))
    with pytest.raises(ValueError):
        AudioProcessor(sample_rate=44_100)


def test_without_livekit_it_passes_audio_through(monkeypatch):
    monkeypatch.setitem(sys.modules, "livekit", None)
    monkeypatch.setitem(sys.modules, "livekit.rtc", None)
    proc = AudioProcessor()
    assert not proc.available and not proc.active
    assert "livekit" in proc.why
    assert proc.enabled == ProcessingSettings()  # what was asked is still readable
    x = NEAR[:4 * FRAME]
    proc.process_render(x)
    assert np.array_equal(proc.process_capture(x), x)
    proc.configure(echo_cancellation=False)
    proc.set_delay_ms(50)
    proc.reset()
    assert np.array_equal(proc.process_capture(x), x)


class Broken:
    def process_stream(self, frame):
        raise RuntimeError("boom")

    def process_reverse_stream(self, frame):
        raise RuntimeError("boom")

    def set_stream_delay_ms(self, ms):
        raise RuntimeError("boom")


@needs_livekit
def test_a_failing_module_falls_back_to_pass_through():
    proc = AudioProcessor()
    proc._apm = Broken()
    x = NEAR[:3 * FRAME]
    assert np.array_equal(proc.process_capture(x), x)
    assert not proc.available and "boom" in proc.why
    assert np.array_equal(proc.process_capture(x), x)
    proc.reset()  # a new call tries again
    assert proc.available and proc.active


def _child(queue) -> None:
    proc = AudioProcessor()
    x = np.arange(FRAME, dtype=np.int16)
    queue.put((proc.available, proc.why, bool(np.array_equal(proc.process_capture(x), x))))


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
@needs_livekit
def test_a_forked_child_passes_through_instead_of_crashing():
    AudioProcessor()  # the native runtime is now started in this process
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    available, why, passed = queue.get(timeout=20)
    child.join(timeout=20)
    assert not available and "fork" in why and passed


@needs_livekit
def test_per_frame_cost_is_small():
    proc = AudioProcessor()
    mic = np.clip(echo_of(FAR, 0.04) + NEAR, -32768, 32767).astype(np.int16)
    out = np.empty(FRAME, np.int16)
    capture, render = [], []
    for i in range(0, len(mic), FRAME):
        t0 = time.perf_counter()
        proc.process_render(FAR[i:i + FRAME])
        t1 = time.perf_counter()
        proc.process_capture(mic[i:i + FRAME], out)
        capture.append(time.perf_counter() - t1)
        render.append(t1 - t0)
    cap_us, ren_us = 1e6 * np.median(capture), 1e6 * np.median(render)
    print(f"per 10 ms frame: capture {cap_us:.0f} us, render {ren_us:.0f} us")
    assert cap_us + ren_us < 2_000  # a 10 ms budget; measured ~110 us here


def test_the_pipeline_feeds_what_the_speaker_was_given_before_each_microphone_frame():
    """On a 48 kHz speaker the reference is what the output callback handed the device (a ring
    written in the callback), drained into the canceller just before the microphone frame."""
    from polyphone.audio.pipeline import AudioPipeline
    from polyphone.audio.ring import Ring

    calls: list[tuple[str, int]] = []

    class Recording:
        def process_render(self, samples):
            calls.append(("render", len(samples)))

        def process_capture(self, samples, out=None):
            calls.append(("capture", len(samples)))
            return samples

    pipeline = AudioPipeline()
    pipeline.processor = Recording()
    pipeline.sink.played = Ring(48_000)
    pipeline.sink.played.write(np.ones(30_000, np.int16))     # 0.625 s: more than one scratch
    pipeline._process_mic(np.zeros(960, np.int16))
    assert calls == [("render", 24_000), ("render", 6_000), ("capture", 960)]
    pipeline._on_speaker(np.ones(960, np.int16), 0.0)          # decoded audio: not the reference
    assert calls[-1] == ("capture", 960)
    pipeline.sink.played = None                                # a 44.1 kHz speaker: it is
    pipeline._on_speaker(np.ones(960, np.int16), 0.0)
    assert calls[-1] == ("render", 960)
