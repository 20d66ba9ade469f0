"""The receive-side audio buffer we install into aiortc in place of its own.

aiortc's receiver makes `JitterBuffer(capacity=16, prefetch=4)` for audio: a
frame leaves only when 4 newer ones have arrived (+80 ms always), one lost
packet blocks everything behind it until the ring overflows (+200 ms for the
rest of the call), and the tail of every utterance waits until the sender
speaks again. `ReleasingBuffer` keeps aiortc's interface (`add(packet) ->
(pli_flag, frame | None)`) but hands every in-order packet on at once and
drops late and duplicate ones: it never waits, so it can never stall. Timing
(absorbing network jitter against the sound card's clock, concealing a lost
frame) belongs to the playout buffer the app owns.

Released packets are also decoded right here, on the event loop, into mono
frames that go straight onto the remote track's queue (`InlineDecoder`).
aiortc would hand each one to a decoder thread, decode it to stereo, and come
back with `run_coroutine_threadsafe` (a task, a future and a self-pipe write
per 20 ms frame); a mono Opus decode takes ~30 µs, less than the trip.

`install(receiver)` is the one place that touches aiortc's private attributes
(the buffer, and the track's queue); it checks the aiortc version and the
attributes' types and refuses loudly if either changed
(tests/unit/test_jitter.py keeps that honest).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from typing import Callable

import av
from aiortc import __version__ as AIORTC_VERSION
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver, TimestampMapper
from aiortc.rtp import RtpPacket
from av import AudioFrame, CodecContext, Packet

log = logging.getLogger(__name__)

SUPPORTED_AIORTC = ("1.16.",)
_ATTR = "_RTCRtpReceiver__jitter_buffer"
MAX_REORDER = 100  # a sequence number further back than this is a restart, not a late packet


class JitterInstallError(RuntimeError):
    pass


class InlineDecoder:
    """Opus packets -> 48 kHz s16 mono AudioFrames (pts = RTP time from 0), handed to `deliver`."""

    def __init__(self, deliver: Callable[[AudioFrame], None]) -> None:
        codec = CodecContext.create("libopus", "r")
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = 48_000
        self.codec = codec
        self.deliver = deliver
        self.errors = 0
        self._timestamps = TimestampMapper()
        self._time_base = fractions.Fraction(1, 48_000)

    def __call__(self, frame: JitterFrame) -> None:
        packet = Packet(frame.data)
        packet.pts = self._timestamps.map(frame.timestamp)
        packet.time_base = self._time_base
        try:
            decoded = self.codec.decode(packet)
        except av.FFmpegError as exc:  # a corrupt packet: drop it, keep the decoder's state
            self.errors += 1
            if self.errors <= 3:
                log.warning("could not decode an audio packet (%s); dropped", exc)
            return
        for out in decoded:
            self.deliver(out)


class ReleasingBuffer:
    """aiortc-compatible audio buffer that releases each packet as it arrives, in order.

    With `decode`, released packets go to it (see InlineDecoder) and aiortc gets nothing
    to decode; without, they are returned to aiortc as JitterFrames.
    """

    def __init__(self, decode: Callable[[JitterFrame], None] | None = None) -> None:
        self.decode = decode
        self._last: int | None = None  # sequence number of the last packet released
        self.released = 0
        self.late = 0        # arrived after a newer packet had been released: dropped
        self.duplicates = 0
        self.gaps = 0        # sequence numbers skipped (lost or still to come, late)

    @property
    def capacity(self) -> int:  # aiortc reads nothing else of the buffer; kept for parity
        return 1

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last is not None:
            ahead = (seq - self._last) & 0xFFFF
            if ahead == 0:
                self.duplicates += 1
                return False, None
            if ahead >= 0x8000:  # behind the last released packet
                if (self._last - seq) & 0xFFFF < MAX_REORDER:
                    self.late += 1
                    return False, None
                ahead = 1  # a far jump back: the sender restarted its sequence
            self.gaps += ahead - 1
        self._last = seq
        self.released += 1
        data = getattr(packet, "_data", None)
        if data is None:  # aiortc depayloads into `_data` before add(); be safe
            data = packet.payload
        frame = JitterFrame(data=data, timestamp=packet.timestamp)
        if self.decode is None:
            return False, frame
        self.decode(frame)
        return False, None


def check_aiortc() -> None:
    if not AIORTC_VERSION.startswith(SUPPORTED_AIORTC):
        raise JitterInstallError(
            f"aiortc {AIORTC_VERSION} is not a version Polyphone's jitter buffer was checked "
            f"against ({', '.join(SUPPORTED_AIORTC)}x); re-check aiortc's RTCRtpReceiver "
            "before raising the pin")


def install(receiver: RTCRtpReceiver, *, decode_inline: bool = True) -> ReleasingBuffer:
    """Replace an audio receiver's jitter buffer (and, with `decode_inline`, its decoder
    thread's work). Raises JitterInstallError if aiortc changed."""
    check_aiortc()
    current = getattr(receiver, _ATTR, None)
    if not isinstance(current, (JitterBuffer, ReleasingBuffer)):
        raise JitterInstallError(
            f"aiortc's RTCRtpReceiver no longer has {_ATTR} as a JitterBuffer "
            f"(found {type(current).__name__}); Polyphone's jitter buffer cannot be installed")
    if isinstance(current, ReleasingBuffer):
        return current
    if getattr(receiver, "_RTCRtpReceiver__kind", None) != "audio":
        raise JitterInstallError("only audio receivers get the releasing buffer")
    decode = None
    if decode_inline:
        # The remote track is made later (with the remote description): look it up per frame.
        if not hasattr(receiver, "_track") or not isinstance(
                getattr(RemoteStreamTrack(kind="audio"), "_queue", None), asyncio.Queue):
            raise JitterInstallError(
                "aiortc's RTCRtpReceiver no longer has _track with an asyncio.Queue _queue; "
                "Polyphone's inline decoder cannot be installed")

        def deliver(frame: AudioFrame) -> None:
            track = receiver._track
            if track is not None:  # aiortc makes it before any RTP can arrive
                track._queue.put_nowait(frame)

        decode = InlineDecoder(deliver)
    buffer = ReleasingBuffer(decode)
    setattr(receiver, _ATTR, buffer)
    return buffer
