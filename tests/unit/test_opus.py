"""Our own Opus path: the mono encoder the microphone track uses, and the inline decoder
the releasing buffer feeds (real libopus through PyAV, real aiortc receivers)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket
from av import Packet

from helpers.fake_capture import FakeCapture
from helpers.waits import until
from polyphone.audio import jitter
from polyphone.audio.capture import MicrophoneTrack
from polyphone.audio.files import FRAME_SAMPLES, SAMPLE_RATE, frame_to_mono
from polyphone.audio.jitter import InlineDecoder
from polyphone.audio.opus import MonoOpusEncoder


def tone(frames: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 960) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    best = 0.0
    for lag in range(0, max_lag, 8):
        x, y = a[: len(a) - lag], b[lag: lag + len(a) - lag]
        n = min(len(x), len(y))
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def encode_all(pcm: np.ndarray) -> list[Packet]:
    enc = MonoOpusEncoder()
    out = [enc.encode(pcm[i:i + FRAME_SAMPLES]) for i in range(0, len(pcm), FRAME_SAMPLES)]
    return [p for p in out if p is not None]


def test_one_mono_packet_per_frame_with_rtp_times_960_apart() -> None:
    packets = encode_all(tone(50))
    assert len(packets) == 50
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(50)]
    assert all(p.time_base == jitter.fractions.Fraction(1, SAMPLE_RATE) for p in packets)
    # about 32-60 kbit/s (VBR) at 20 ms: 80-150 bytes; aiortc's encoder sends ~240 (96 kbit/s)
    assert 60 <= np.mean([p.size for p in packets[5:]]) <= 160
    # the Opus TOC byte's stereo flag (bit 2) is clear: mono, which RFC 7587 allows
    assert all(bytes(p)[0] & 0x04 == 0 for p in packets)


def test_wrong_frame_size_is_refused() -> None:
    with pytest.raises(ValueError, match="960"):
        MonoOpusEncoder().encode(np.zeros(480, dtype=np.int16))


def test_aiortcs_own_stereo_decoder_plays_our_mono_packets() -> None:
    pcm = tone(50)
    decoder = OpusDecoder()
    out = []
    for p in encode_all(pcm):
        for frame in decoder.decode(JitterFrame(bytes(p), p.pts)):
            out.append(frame_to_mono(frame))
    decoded = np.concatenate(out)
    assert len(decoded) == len(pcm)
    assert best_correlation(pcm[4800:], decoded[4800:]) > 0.95


def test_inline_decoder_gives_mono_frames_stamped_with_rtp_time_from_zero() -> None:
    pcm = tone(30)
    frames = []
    decode = InlineDecoder(frames.append)
    base = 123_456_789
    for p in encode_all(pcm):
        decode(JitterFrame(bytes(p), (base + p.pts) & 0xFFFFFFFF))
    assert len(frames) == 30
    assert all(f.layout.name == "mono" and f.sample_rate == SAMPLE_RATE for f in frames)
    assert [f.pts for f in frames] == [i * FRAME_SAMPLES for i in range(30)]
    decoded = np.concatenate([frame_to_mono(f) for f in frames])
    assert best_correlation(pcm[4800:], decoded[4800:]) > 0.95


def test_a_corrupt_packet_is_dropped_and_counted_not_raised() -> None:
    frames = []
    decode = InlineDecoder(frames.append)
    good = encode_all(tone(3))
    decode(JitterFrame(bytes(good[0]), 0))
    decode(JitterFrame(b"\xff" * 3, 960))  # code 3 with a missing frame count: invalid
    decode(JitterFrame(bytes(good[2]), 1920))
    assert decode.errors == 1
    assert len(frames) == 2


async def test_a_real_call_plays_through_the_inline_decoder_in_mono() -> None:
    # Two aiortc peers on loopback: the caller sends our mono packets, the answerer's
    # receiver decodes inline; its decoder thread is never given a frame.
    caller, answerer = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
    got: list = []
    try:
        cap = FakeCapture()
        cap.feed(tone(1))
        caller.addTrack(MicrophoneTrack(cap, encoder=MonoOpusEncoder()))

        @answerer.on("track")
        def on_track(track) -> None:
            async def read() -> None:
                while len(got) < 10:
                    got.append(await track.recv())
            asyncio.ensure_future(read())

        await caller.setLocalDescription(await caller.createOffer())
        await answerer.setRemoteDescription(caller.localDescription)
        buffer = jitter.install(answerer.getTransceivers()[0].receiver)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await caller.setRemoteDescription(answerer.localDescription)
        # up to 3 s, while the track keeps time with silence
        await until(lambda: len(got) >= 10, 3.0, 0.01, lambda: f"10 frames (only {len(got)} arrived)")
        assert all(f.layout.name == "mono" for f in got)
        assert buffer.released >= 10 and buffer.decode is not None and buffer.decode.errors == 0
    finally:
        await caller.close()
        await answerer.close()


def test_uninstalled_buffer_still_returns_frames_to_aiortc() -> None:
    buffer = jitter.ReleasingBuffer()
    rtp = RtpPacket(payload_type=111, sequence_number=1, timestamp=960)
    rtp._data = b"\x08"  # type: ignore[attr-defined]
    pli, frame = buffer.add(rtp)
    assert not pli and frame is not None and frame.timestamp == 960


async def test_microphone_track_with_an_encoder_hands_aiortc_packets() -> None:
    cap = FakeCapture()
    heard = []
    track = MicrophoneTrack(cap, encoder=MonoOpusEncoder())
    track.hooks.append(lambda samples, t: heard.append(samples.copy()))
    pcm = tone(3)
    cap.feed(pcm[:FRAME_SAMPLES])
    first = await asyncio.wait_for(track.recv(), 1.0)  # the call starts here
    cap.feed(pcm[FRAME_SAMPLES:])
    rest = [await asyncio.wait_for(track.recv(), 1.0) for _ in range(2)]
    assert all(isinstance(p, Packet) for p in [first, *rest])
    assert [p.pts for p in [first, *rest]] == [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    assert len(heard) == 3 and all(len(h) == FRAME_SAMPLES for h in heard)
