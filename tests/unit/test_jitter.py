"""The releasing jitter buffer, and a loud failure if aiortc's internals change."""

from __future__ import annotations

import aiortc
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from polyphone import rtc_internals
from polyphone.audio import jitter
from polyphone.audio.jitter import ReleasingBuffer


def packet(seq: int, ts: int | None = None) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF,
                  timestamp=(ts if ts is not None else seq * 960) & 0xFFFFFFFF)
    p._data = bytes([seq & 0xFF])  # type: ignore[attr-defined]
    return p


def test_every_in_order_packet_is_released_at_once() -> None:
    buf = ReleasingBuffer()
    for seq in range(10):
        pli, frame = buf.add(packet(seq))
        assert not pli and frame is not None and frame.timestamp == seq * 960
    assert buf.released == 10 and buf.gaps == 0


def test_a_lost_packet_never_blocks_what_follows() -> None:
    buf = ReleasingBuffer()
    out = [buf.add(packet(s))[1] for s in (0, 1, 3, 4, 5)]
    assert all(f is not None for f in out)
    assert buf.gaps == 1


def test_stock_aiortc_buffer_prefetches_four_frames_and_stalls_behind_a_gap() -> None:
    # The behaviour we replace: 4 frames of prefetch, and a gap holds everything behind it.
    stock = JitterBuffer(capacity=16, prefetch=4)
    released = [stock.add(packet(s))[1] for s in range(4)]
    assert released == [None] * 4
    stock = JitterBuffer(capacity=16, prefetch=4)
    out = [stock.add(packet(s))[1] for s in [0, 1, 2, 3, 4] + list(range(6, 14))]
    assert sum(f is not None for f in out[5:]) == 0  # stuck behind the lost packet 5


def test_late_and_duplicate_packets_are_dropped() -> None:
    buf = ReleasingBuffer()
    buf.add(packet(10))
    buf.add(packet(12))
    assert buf.add(packet(11))[1] is None and buf.late == 1
    assert buf.add(packet(12))[1] is None and buf.duplicates == 1


def test_sequence_wraps_and_restarts() -> None:
    buf = ReleasingBuffer()
    for seq in (65534, 65535, 0, 1):
        assert buf.add(packet(seq))[1] is not None
    assert buf.gaps == 0
    assert buf.add(packet(30000))[1] is not None  # far ahead: a jump, released
    assert buf.add(packet(1000))[1] is not None  # far behind: a restart, released


async def test_installs_into_a_real_receiver() -> None:
    pc = RTCPeerConnection()
    try:
        t = pc.addTransceiver("audio")
        buf = jitter.install(t.receiver)
        assert isinstance(buf, ReleasingBuffer)
        assert jitter.install(t.receiver) is buf  # idempotent
        assert getattr(t.receiver, jitter._ATTR) is buf
    finally:
        await pc.close()


async def test_says_what_degrades_when_aiortc_internals_change(monkeypatch, caplog) -> None:
    pc = RTCPeerConnection()
    try:
        t = pc.addTransceiver("audio")
        delattr(t.receiver, jitter._ATTR)
        monkeypatch.setattr(rtc_internals, "_warned", set())
        assert jitter.install(t.receiver) is None  # the call goes on with aiortc's own buffer
        assert "no longer has" in caplog.text and "stock jitter buffer" in caplog.text
    finally:
        await pc.close()
    assert "not a version" in rtc_internals.version_problem("jitter", {"aiortc": "2.0.0"})


def test_the_installed_aiortc_is_a_checked_version() -> None:
    # Fails when the pin is raised without re-checking RTCRtpReceiver.
    assert rtc_internals.version_problem("jitter", {"aiortc": aiortc.__version__}) is None
