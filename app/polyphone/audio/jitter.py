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

`install(receiver)` is the one place that touches aiortc's private attribute;
it checks the aiortc version and the attribute's type and refuses loudly if
either changed (tests/unit/test_jitter.py keeps that honest).
"""

from __future__ import annotations

from aiortc import __version__ as AIORTC_VERSION
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

SUPPORTED_AIORTC = ("1.16.",)
_ATTR = "_RTCRtpReceiver__jitter_buffer"
MAX_REORDER = 100  # a sequence number further back than this is a restart, not a late packet


class JitterInstallError(RuntimeError):
    pass


class ReleasingBuffer:
    """aiortc-compatible audio buffer that releases each packet as it arrives, in order."""

    def __init__(self) -> None:
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
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def check_aiortc() -> None:
    if not AIORTC_VERSION.startswith(SUPPORTED_AIORTC):
        raise JitterInstallError(
            f"aiortc {AIORTC_VERSION} is not a version Polyphone's jitter buffer was checked "
            f"against ({', '.join(SUPPORTED_AIORTC)}x); re-check aiortc's RTCRtpReceiver "
            "before raising the pin")


def install(receiver: RTCRtpReceiver) -> ReleasingBuffer:
    """Replace an audio receiver's jitter buffer. Raises JitterInstallError if aiortc changed."""
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
    buffer = ReleasingBuffer()
    setattr(receiver, _ATTR, buffer)
    return buffer
