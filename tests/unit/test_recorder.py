"""CallRecorder: a stereo WAV written as the call goes, caller left, agent right."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from polyphone.audio.analysis import click_times
from polyphone.audio.recorder import HEADER_BYTES, CallRecorder, safe_recording_name

RATE = 48_000
T0 = 1234.5  # any monotonic origin
ROOT = Path(__file__).resolve().parents[2]


def ramp(seconds: float, seed: int) -> np.ndarray:
    """Distinct, never-zero samples, so a misplaced or missing sample shows."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, 20000, int(seconds * RATE)).astype(np.int16)


def feed(rec: CallRecorder, caller: np.ndarray, agent: np.ndarray, *, caller_t: float = T0,
         agent_t: float = T0, caller_chunk: int = 960, agent_chunk: int = 960,
         jitter_s: float = 0.0) -> None:
    """Deliver both sides chunk by chunk in the order their times say (as a call would)."""
    rng = np.random.default_rng(0)
    chunks = [(caller_t + i / RATE, "c", caller[i:i + caller_chunk])
              for i in range(0, len(caller), caller_chunk)]
    chunks += [(agent_t + i / RATE, "a", agent[i:i + agent_chunk])
               for i in range(0, len(agent), agent_chunk)]
    for t, side, x in sorted(chunks, key=lambda c: c[0]):
        t += rng.uniform(-jitter_s, jitter_s)
        (rec.add_caller if side == "c" else rec.add_agent)(x, t)


def read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)


def click(level: float = 20000.0) -> np.ndarray:
    x = np.zeros(480, np.int16)
    x[:48] = (level * np.hanning(48)).astype(np.int16)
    return x


def test_clicks_half_a_second_apart_stay_half_a_second_apart(tmp_path):
    caller, agent = np.zeros(3 * RATE, np.int16), np.zeros(3 * RATE, np.int16)
    caller[RATE:RATE + 480] = click()                  # at t0 + 1.0
    agent[RATE // 2:RATE // 2 + 480] = click()         # at (t0 + 1.0) + 0.5
    rec = CallRecorder(tmp_path / "call.wav")
    feed(rec, caller, agent, agent_t=T0 + 1.0, caller_chunk=960, agent_chunk=441)
    rec.close()
    data = read(tmp_path / "call.wav")
    (left,), (right,) = click_times(data[:, 0]), click_times(data[:, 1])
    assert left == pytest.approx(1.0, abs=0.001)       # the timeline starts at the first chunk
    assert right - left == pytest.approx(0.5, abs=1 / RATE)


@pytest.mark.parametrize("caller_chunk,agent_chunk", [(480, 1331), (960, 960), (4096, 100)])
def test_chunk_sizes_do_not_matter_and_every_sample_lands_in_place(tmp_path, caller_chunk, agent_chunk):
    caller, agent = ramp(3.0, 1), ramp(3.0, 2)
    rec = CallRecorder(tmp_path / "call.wav")
    feed(rec, caller, agent, agent_t=T0 + 0.25, caller_chunk=caller_chunk, agent_chunk=agent_chunk)
    rec.close()
    data = read(tmp_path / "call.wav")
    lag = RATE // 4
    assert len(data) == lag + len(agent)                # the longer side sets the length
    assert np.array_equal(data[:len(caller), 0], caller)
    assert not data[len(caller):, 0].any()              # caller padded with silence at the end
    assert not data[:lag, 1].any()                      # agent silent until its first chunk
    assert np.array_equal(data[lag:, 1], agent)
    assert rec.late_samples == 0 and rec.error is None


def test_timestamp_jitter_does_not_break_continuous_audio(tmp_path):
    caller, agent = ramp(2.0, 3), ramp(2.0, 4)
    rec = CallRecorder(tmp_path / "call.wav", snap_ms=20.0)
    feed(rec, caller, agent, agent_t=T0 + 0.1, jitter_s=0.004)
    rec.close()
    data = read(tmp_path / "call.wav")
    # Each side is placed where its first chunk said, and continues without a seam.
    start = int(np.flatnonzero(data[:, 0])[0]), int(np.flatnonzero(data[:, 1])[0])
    assert start[0] == 0 and abs(start[1] - 0.1 * RATE) <= 0.004 * RATE
    assert np.array_equal(data[:len(caller), 0], caller)
    assert np.array_equal(data[start[1]:start[1] + len(agent), 1], agent)


def test_a_gap_becomes_silence(tmp_path):
    rec = CallRecorder(tmp_path / "call.wav")
    a, b = ramp(0.5, 5), ramp(0.5, 6)
    t = T0
    for i in range(0, RATE * 2, 960):                   # the caller talks throughout
        rec.add_caller(np.full(960, 7, np.int16), t + i / RATE)
        if i == 0:
            rec.add_agent(a, t)
        if i == RATE:
            rec.add_agent(b, t + 1.0)                   # the agent was silent 0.5 .. 1.0
    rec.close()
    data = read(tmp_path / "call.wav")
    assert np.array_equal(data[:RATE // 2, 1], a)
    assert not data[RATE // 2:RATE, 1].any()
    assert np.array_equal(data[RATE:3 * RATE // 2, 1], b)
    assert (data[:, 0] == 7).all()


def test_a_side_lagging_too_far_is_not_waited_for_and_memory_stays_bounded(tmp_path):
    rec = CallRecorder(tmp_path / "call.wav", max_skew_s=0.5)
    ring = rec._ring.nbytes
    for i in range(0, 60 * RATE, 960):                  # a minute of caller, no agent at all
        rec.add_caller(np.full(960, 3, np.int16), T0 + i / RATE)
    assert rec._ring.nbytes == ring <= 4 * 4 * RATE     # a few seconds, whatever the length
    assert rec.frames_written >= 59 * RATE              # written without the agent side
    rec.add_agent(np.full(960, 5, np.int16), T0 + 1.0)  # far behind: too late, dropped
    assert rec.late_samples == 960
    rec.add_agent(np.full(960, 5, np.int16), T0 + 59.9)  # within the skew: lands
    rec.close()
    data = read(tmp_path / "call.wav")
    assert len(data) == 60 * RATE and (data[:, 0] == 3).all()
    assert (data[int(59.9 * RATE):int(59.9 * RATE) + 960, 1] == 5).all()
    assert data[:, 1].sum() == 5 * 960


def test_a_wild_timestamp_does_not_write_hours_of_silence(tmp_path):
    rec = CallRecorder(tmp_path / "call.wav", max_gap_s=30.0)
    rec.add_caller(np.full(960, 1, np.int16), T0)
    rec.add_caller(np.full(960, 2, np.int16), T0 + 3600.0)   # wrong clock
    rec.close()
    data = read(tmp_path / "call.wav")
    assert rec.clock_jumps == 1 and len(data) == 2 * 960
    assert (data[960:, 0] == 2).all()


def test_header_is_kept_current_while_recording(tmp_path):
    rec = CallRecorder(tmp_path / "call.wav", flush_interval_s=0.5)
    caller = ramp(3.0, 7)
    feed(rec, caller, caller)
    with wave.open(str(tmp_path / "call.wav"), "rb") as w:   # not closed yet: readable anyway
        n = w.getnframes()
    assert 2.0 * RATE <= n <= 3.0 * RATE
    rec.close()
    rec.close()                                              # idempotent
    size = (tmp_path / "call.wav").stat().st_size
    assert size == HEADER_BYTES + 4 * 3 * RATE
    raw = (tmp_path / "call.wav").read_bytes()
    assert int.from_bytes(raw[4:8], "little") == size - 8
    assert int.from_bytes(raw[40:44], "little") == size - HEADER_BYTES
    assert len(read(tmp_path / "call.wav")) == 3 * RATE


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from polyphone.audio.recorder import CallRecorder
    rec = CallRecorder(sys.argv[1])
    rng = np.random.default_rng(9)
    t0, i = 500.0, 0
    while True:
        x = rng.integers(1, 20000, 960).astype(np.int16)
        rec.add_caller(x, t0 + i / 48000)
        rec.add_agent(-x, t0 + i / 48000)
        i += 960
        print(i, flush=True)
        time.sleep(0.002)   # ten times real time
""")


def test_killed_mid_call_leaves_a_readable_file(tmp_path):
    path = tmp_path / "killed.wav"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        fed = 0
        for line in child.stdout:
            fed = int(line)
            if fed >= 4 * RATE + 4800:                 # 4.1 s in: mid-flush-interval
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        fed = max([fed] + [int(x) for x in child.stdout.read().split()])
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    data = read(path)
    assert fed / RATE - 1.0 <= len(data) / RATE <= fed / RATE
    assert data[:, 0].all() and np.array_equal(data[:, 1], -data[:, 0])  # whole, aligned frames
    if shutil.which("sox"):
        info = subprocess.run(["sox", "--i", "-D", str(path)], capture_output=True, text=True)
        assert info.returncode == 0 and float(info.stdout) == pytest.approx(len(data) / RATE)
        stat = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True)
        assert stat.returncode == 0, stat.stderr


def test_two_threads_feeding_at_once(tmp_path):
    caller, agent = ramp(4.0, 10), ramp(4.0, 11)
    rec = CallRecorder(tmp_path / "call.wav", max_skew_s=1.5)
    # Both threads pace themselves against a shared position so neither runs far ahead.
    done = [0, 0]

    def run(side: int, x: np.ndarray, add) -> None:
        for i in range(0, len(x), 960):
            while i > min(done) + 20 * 960:
                threading.Event().wait(0.0005)
            add(x[i:i + 960], T0 + i / RATE)
            done[side] = i
        done[side] = len(x) * 2

    threads = [threading.Thread(target=run, args=(0, caller, rec.add_caller)),
               threading.Thread(target=run, args=(1, agent, rec.add_agent))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=20)
    rec.close()
    data = read(tmp_path / "call.wav")
    assert np.array_equal(data[:, 0], caller) and np.array_equal(data[:, 1], agent)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_stops_recording_without_raising():
    reasons: list[str] = []
    rec = CallRecorder("/dev/full", on_error=reasons.append)
    for i in range(0, 3 * RATE, 960):
        rec.add_caller(np.ones(960, np.int16), T0 + i / RATE)
        rec.add_agent(np.ones(960, np.int16), T0 + i / RATE)
    rec.close()
    assert not rec.recording and len(reasons) == 1
    assert rec.error == reasons[0] and "No space left" in rec.error


def test_missing_folder_is_reported_not_raised(tmp_path):
    reasons: list[str] = []
    rec = CallRecorder(tmp_path / "gone" / "call.wav", on_error=reasons.append)
    assert not rec.recording and reasons and "No such file" in rec.error
    rec.add_caller(np.ones(960, np.int16), T0)       # no-ops
    rec.flush()
    rec.close()


def test_folder_removed_during_the_call_is_noticed(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    rec = CallRecorder(folder / "call.wav")
    feed(rec, ramp(1.0, 1), ramp(1.0, 2))
    shutil.rmtree(folder)
    feed(rec, ramp(1.0, 1), ramp(1.0, 2), caller_t=T0 + 1.0, agent_t=T0 + 1.0)
    assert not rec.recording and "deleted" in rec.error
    rec.close()


def test_an_on_error_callback_that_raises_is_contained(tmp_path):
    def bad(reason: str) -> None:
        raise RuntimeError("callback bug")

    rec = CallRecorder(tmp_path / "nope" / "x.wav", on_error=bad)
    assert rec.error and not rec.recording


# --- names ------------------------------------------------------------------------------------


def test_safe_recording_name():
    when = datetime(2026, 11, 23, 19, 40, 5)
    assert safe_recording_name("Bookings UK", when) == "2026-11-23_19-40-05_Bookings-UK.wav"
    assert safe_recording_name("Réservations / Café", when) == \
        "2026-11-23_19-40-05_Reservations-Cafe.wav"
    assert safe_recording_name("", when) == "2026-11-23_19-40-05_call.wav"
    assert safe_recording_name("../../etc/passwd", when) == "2026-11-23_19-40-05_etc-passwd.wav"
    assert safe_recording_name('a:b*c?"<>|\\d\x00e', when) == "2026-11-23_19-40-05_a-b-c-d-e.wav"
    pasted = "Prod sk_live_4eC39HqLyjWDarjtT1zdp7dc 0f8fad5b-d9cb-469f-a165-70867728950e"
    secret = safe_recording_name(pasted, when)
    assert secret == "2026-11-23_19-40-05_Prod.wav"
    long = safe_recording_name("x" * 300, when)
    assert len(long) <= 20 + 40 + 4 and "/" not in long
    ts = datetime(2026, 1, 2, 3, 4, 5).timestamp()
    assert safe_recording_name("A", ts) == "2026-01-02_03-04-05_A.wav"
