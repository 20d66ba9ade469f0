"""The ring buffer and the microphone track's pacing, backlog and mute (no sound card)."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from helpers.fake_capture import FakeCapture
from polyphone.audio.capture import MicrophoneTrack
from polyphone.audio.ring import Ring


def test_ring_keeps_order_wraps_and_drops_the_oldest() -> None:
    ring = Ring(10)
    ring.write(np.arange(6, dtype=np.int16))
    assert list(ring.read(4)) == [0, 1, 2, 3]
    ring.write(np.arange(6, 14, dtype=np.int16))  # wraps; exactly full
    assert ring.available == 10 and ring.dropped == 0
    ring.write(np.arange(14, 16, dtype=np.int16))  # 2 over: the 2 oldest (4, 5) go
    assert ring.dropped == 2
    out = ring.read(10)
    assert list(out) == list(range(6, 16))
    assert ring.available == 0


def test_ring_overflow_counts_exactly() -> None:
    ring = Ring(8)
    ring.write(np.arange(5, dtype=np.int16))
    ring.write(np.arange(5, 12, dtype=np.int16))  # 12 written, capacity 8: 4 dropped
    assert ring.dropped == 4
    assert list(ring.read(8)) == list(range(4, 12))
    ring.write(np.arange(20, dtype=np.int16))  # longer than the ring: keep the newest 8
    assert list(ring.read(8)) == list(range(12, 20))


def test_read_into_fills_what_it_has_and_skip_drops() -> None:
    ring = Ring(16)
    ring.write(np.ones(5, dtype=np.int16))
    out = np.full(8, 7, dtype=np.int16)
    assert ring.read_into(out) == 5
    assert list(out) == [1] * 5 + [7] * 3
    ring.write(np.ones(6, dtype=np.int16))
    assert ring.skip(4) == 4 and ring.available == 2


async def test_frames_are_20_ms_and_hooks_see_them() -> None:
    cap = FakeCapture()
    track = MicrophoneTrack(cap)
    seen = []
    track.hooks.append(lambda s, t: seen.append(len(s)))
    cap.feed(np.arange(960 * 3, dtype=np.int16))
    f1 = await track.recv()  # what was heard before the call is not sent: the newest 20 ms
    assert list(f1.to_ndarray()[0][:2]) == [1920, 1921]
    cap.feed(np.arange(2880, 2880 + 960, dtype=np.int16))
    f2 = await track.recv()
    assert f1.samples == f2.samples == 960 and f1.sample_rate == 48_000
    assert f2.pts - f1.pts == 960
    assert list(f2.to_ndarray()[0][:3]) == [2880, 2881, 2882]
    assert seen == [960, 960]


async def test_a_lagging_consumer_drops_the_oldest_audio_and_counts_it() -> None:
    cap = FakeCapture()
    track = MicrophoneTrack(cap, max_backlog_ms=40)
    cap.feed(np.zeros(960, dtype=np.int16))
    await track.recv()
    cap.feed(np.arange(48_000 // 2, dtype=np.int16) % 30000)  # then 500 ms pile up
    frame = await track.recv()
    first = int(frame.to_ndarray()[0][0])
    # only 20 ms frame + 40 ms backlog are kept: the frame is from the newest 60 ms
    assert first == (24_000 - 960 - 1920) % 30000
    assert abs(track.dropped_ms - (500 - 60)) < 1


async def test_a_silent_device_still_paces_frames_so_rtp_keeps_flowing() -> None:
    cap = FakeCapture()
    cap.last_callback = time.monotonic() - 10  # the device stopped long ago
    track = MicrophoneTrack(cap)
    t0 = time.monotonic()
    frames = [await asyncio.wait_for(track.recv(), 1) for _ in range(5)]
    elapsed = time.monotonic() - t0
    assert all(not f.to_ndarray().any() for f in frames)
    assert 0.06 <= elapsed <= 0.2  # about 20 ms a frame, not a burst, not a stall


async def test_mute_sends_silence_but_keeps_sending() -> None:
    cap = FakeCapture()
    track = MicrophoneTrack(cap)
    track.muted = True
    cap.feed(np.full(960, 1000, dtype=np.int16))
    frame = await track.recv()
    assert frame.samples == 960 and not frame.to_ndarray().any()


async def test_processing_runs_on_each_frame() -> None:
    cap = FakeCapture()
    track = MicrophoneTrack(cap, process=lambda s: (s // 2).astype(np.int16))
    cap.feed(np.full(960, 1000, dtype=np.int16))
    frame = await track.recv()
    assert int(frame.to_ndarray()[0][0]) == 500
