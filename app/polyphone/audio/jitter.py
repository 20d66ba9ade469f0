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

`install(receiver)` puts it in place through polyphone.rtc_internals (the
hooks "jitter" and "inline-decode"), which checks the aiortc version and the
private attributes' types: if either changed, it logs a WARNING saying what is
degraded and `install` returns None, leaving aiortc's stock buffer (and decoder
thread) in place; the call goes on (tests/unit/test_rtc_internals.py).
"""

from __future__ import annotations

import fractions
import logging
from typing import Callable

import av
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper
from aiortc.rtp import RtpPacket
from av import AudioFrame, CodecContext, Packet

from .. import rtc_internals

log = logging.getLogger(__name__)

_ATTR = rtc_internals.JITTER_ATTR
MAX_REORDER = 100  # a sequence number further back than this is a restart, not a late packet


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
        frame = JitterFrame(data=rtc_internals.rtp_payload(packet), timestamp=packet.timestamp)
        if self.decode is None:
            return False, frame
        self.decode(frame)
        return False, None


def install(receiver: RTCRtpReceiver, *, decode_inline: bool = True) -> ReleasingBuffer | None:
    """Replace an audio receiver's jitter buffer (and, with `decode_inline`, its decoder
    thread's work); installing twice returns the same buffer. None when aiortc changed
    (logged as a WARNING): aiortc's stock buffer stays and the call works as before.
    Without the inline decoder's hook, the buffer hands frames to aiortc's decoder."""
    return rtc_internals.install_audio_buffer(
        receiver, lambda deliver: ReleasingBuffer(InlineDecoder(deliver) if deliver else None),
        inline=decode_inline)
