"""Misbehaviour the local gateway can inject, so clients are tested against it."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiortc.rtp import is_rtcp

from .impair import Impairment

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Misbehaviour to inject (all off by default)."""

    answer_delay: float = 0.0               # seconds before sending the answer
    never_answer: bool = False              # accept offers, never reply
    drop_socket_after: float | None = None  # abort the TCP connection N s after the answer (session survives)
    error_code: str | None = None           # answer every offer with this error code instead
    malformed_frames: bool = False          # after the answer, send a few malformed frames
    close_after: float | None = None        # send `close` N s after the answer, then end the session
    candidates_before_answer: bool = False  # send the ice-candidate frames before the answer
    drop_packet_after: float | None = None  # drop one outbound RTP audio packet N s after the answer
    impair: Impairment | None = None        # loss/delay/jitter on the media sockets, both ways


def malformed_frame_texts(session_id: str) -> list[str]:
    """Frames a gateway must never send: bad JSON, unknown type, missing fields."""
    return [
        "this is not JSON {",
        json.dumps({"type": "no-such-type", "sessionId": session_id}),
        json.dumps({"type": "ice-candidate", "sessionId": session_id}),   # no data
        json.dumps({"sessionId": session_id, "data": {}}),                # no type
        "[1, 2, 3]",
    ]


@dataclass(frozen=True)
class DroppedPacket:
    """An RTP packet the gateway did not send (`drop_packet_after`)."""

    at: float             # time.monotonic() when it would have been sent
    sequence_number: int
    timestamp: int        # RTP timestamp (48 kHz for Opus)


def drop_next_rtp_packet(peer: "RTCPeerConnection", record: list[DroppedPacket]) -> bool:
    """Make the peer's audio sender lose its next RTP packet on the wire.

    The hook is the sender's DTLS transport: its `_send_rtp(data)` is what
    `RTCRtpSender._run_rtp` awaits for each packet after giving it a sequence
    number and an RTP timestamp, and before SRTP protects it. An instance
    attribute wraps that method and swallows exactly one RTP packet of this
    sender (RTCP and other senders pass); after that it only passes packets on
    (it stays, so that hooks stacked on the same method keep working). The
    receiver sees what a lost packet looks like: one sequence number and 20 ms
    of RTP time missing.
    (The packet stays in the sender's history, so a NACK could still recover it;
    Opus receivers normally send none.) Returns False when there is no audio
    sender or aiortc changed (then nothing is dropped, and it is logged).
    """
    sender = next((s for s in peer.getSenders() if s.kind == "audio"), None)
    transport = sender.transport if sender is not None else None
    original = getattr(transport, "_send_rtp", None)
    if transport is None or original is None:
        log.warning("drop_packet_after: no audio sender with an RTP transport; nothing dropped")
        return False
    ssrc = getattr(sender, "_ssrc", None)
    done = False

    async def send_rtp(data: bytes) -> None:
        nonlocal done
        if (not done and len(data) >= 12 and not is_rtcp(data)
                and (ssrc is None or int.from_bytes(data[8:12], "big") == ssrc)):
            done = True  # one packet only
            packet = DroppedPacket(time.monotonic(), int.from_bytes(data[2:4], "big"),
                                   int.from_bytes(data[4:8], "big"))
            record.append(packet)
            log.info("dropped RTP packet seq=%d ts=%d (fault)", packet.sequence_number,
                     packet.timestamp)
            return
        await original(data)

    transport._send_rtp = send_rtp
    return True
