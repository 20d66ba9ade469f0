"""Misbehaviour the local gateway can inject, so clients are tested against it.

`Faults` holds the switches; this module also builds what some of them put on
the wire (frames, RTP hooks). When they happen is `misbehaviour.py`'s job.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from aiortc.rtp import is_rtcp
from websockets.frames import EXTERNAL_CLOSE_CODES

from .. import protocol, rtc_internals
from ..protocol import Candidate, IceCandidate
from .impair import Impairment

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)

ERROR_SHAPES = ("no-code", "no-data", "bare-message")
ERROR_SHAPE_MESSAGE = "Agent is not available right now"
CLOSE_WITHOUT_SESSION = '{"type":"close"}'
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code


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
    # N s after the answer, close the peer and the websocket (this code and reason), no `close` frame
    hangup_after: float | None = None
    hangup_code: int = 1000
    hangup_reason: str = ""
    close_without_session: bool = False     # close_after's frame is `{"type":"close"}`, no sessionId
    error_shape: str | None = None          # answer every offer with an error frame of this shape
    pause_rtp: tuple[float, float] | None = None  # (start, length) s after the answer: no RTP audio
    bad_candidates: bool = False            # after the answer's candidates, bad ice-candidate frames
    no_resume: bool = False                 # a session ends with its socket; no other socket reaches it

    def __post_init__(self) -> None:
        if not valid_close_code(self.hangup_code):
            raise ValueError(f"{self.hangup_code} is not a close code a server may send "
                             "(1000-1003, 1007-1014, 3000-4999)")
        if len(self.hangup_reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
            raise ValueError(f"the close reason is over {MAX_CLOSE_REASON_BYTES} bytes of UTF-8")
        if self.error_shape is not None and self.error_shape not in ERROR_SHAPES:
            raise ValueError(f"unknown error shape {self.error_shape!r} "
                             f"(choose from {', '.join(ERROR_SHAPES)})")
        if self.pause_rtp is not None:
            start, length = self.pause_rtp
            if start < 0 or length <= 0:
                raise ValueError("pause_rtp needs a start >= 0 and a length > 0 (seconds)")


def valid_close_code(code: int) -> bool:
    """True for the websocket close codes a server may put in a close frame (RFC 6455 7.4)."""
    return code in EXTERNAL_CLOSE_CODES or 3000 <= code < 5000


def malformed_frame_texts(session_id: str) -> list[str]:
    """Frames a gateway must never send: bad JSON, unknown type, missing fields."""
    return [
        "this is not JSON {",
        json.dumps({"type": "no-such-type", "sessionId": session_id}),
        json.dumps({"type": "ice-candidate", "sessionId": session_id}),   # no data
        json.dumps({"sessionId": session_id, "data": {}}),                # no type
        "[1, 2, 3]",
    ]


def error_shape_text(shape: str) -> str:
    """The raw error frame for `Faults.error_shape` (protocol.encode always writes a code)."""
    if shape == "no-code":
        obj = {"type": "error", "sessionId": "", "data": {"message": ERROR_SHAPE_MESSAGE}}
    elif shape == "no-data":
        obj = {"type": "error", "sessionId": ""}
    elif shape == "bare-message":
        obj = {"type": "error", "message": ERROR_SHAPE_MESSAGE}
    else:
        raise ValueError(f"unknown error shape {shape!r}")
    return json.dumps(obj, separators=(",", ":"))


# Candidate lines a client must survive (Faults.bad_candidates):
TOO_FEW_FIELDS = "candidate:1 1 udp 2130706431"
GARBAGE = "candidate:garbage here"
# Eight fields, reads like a candidate; aiortc's candidate_from_sdp raises ValueError on int("port").
UNPARSABLE_PORT = "candidate:1 1 udp 2130706431 127.0.0.1 port typ host"


def bad_candidate_frames(session_id: str, real: Sequence[Candidate]) -> list[str]:
    """The ice-candidate frames `Faults.bad_candidates` sends after the real ones, in order.

    A line with too few fields; garbage; a well-formed line aiortc cannot parse (the
    port is not a number); a duplicate of the first real candidate; that candidate
    again with sdpMLineIndex the string "0"; the last real candidate with sdpMid
    only (no sdpMLineIndex key); an empty candidate (end-of-candidates). Without real
    candidates, the three built from them are left out.
    """
    first = real[0] if real else None
    mid = first.sdp_mid if first is not None and first.sdp_mid is not None else "0"
    index = first.sdp_mline_index if first is not None and first.sdp_mline_index is not None else 0

    def frame(data: dict) -> str:
        return json.dumps({"type": "ice-candidate", "sessionId": session_id, "data": data},
                          separators=(",", ":"))

    def line(text: str) -> str:
        return frame({"candidate": text, "sdpMid": mid, "sdpMLineIndex": index})

    frames = [line(TOO_FEW_FIELDS), line(GARBAGE), line(UNPARSABLE_PORT)]
    if first is not None:
        last = real[-1]
        frames += [
            protocol.encode(IceCandidate(session_id, first)),  # byte for byte what was sent
            frame({"candidate": first.candidate, "sdpMid": mid, "sdpMLineIndex": str(index)}),
            frame({"candidate": last.candidate, "sdpMid": last.sdp_mid if last.sdp_mid is not None else mid}),
        ]
    frames.append(line(""))
    return frames


def _audio_sender(peer: "RTCPeerConnection", what: str):
    """The peer's audio sender, or None (logged)."""
    sender = next((s for s in peer.getSenders() if s.kind == "audio"), None)
    if sender is None:
        log.warning("%s: no audio sender; nothing done", what)
    return sender


def _is_ours(data: bytes, ssrc: int | None) -> bool:
    """An RTP (not RTCP) packet of the sender with this SSRC."""
    return (len(data) >= 12 and not is_rtcp(data)
            and (ssrc is None or int.from_bytes(data[8:12], "big") == ssrc))


@dataclass(frozen=True)
class DroppedPacket:
    """An RTP packet the gateway did not send (`drop_packet_after`)."""

    at: float             # time.monotonic() when it would have been sent
    sequence_number: int
    timestamp: int        # RTP timestamp (48 kHz for Opus)


def drop_next_rtp_packet(peer: "RTCPeerConnection", record: list[DroppedPacket]) -> bool:
    """Make the peer's audio sender lose its next RTP packet on the wire.

    The hook (rtc_internals.filter_sent_rtp, "rtp-faults") is the sender's DTLS
    transport's `_send_rtp(data)`, which `RTCRtpSender._run_rtp` awaits for each
    packet after giving it a sequence number and an RTP timestamp, and before
    SRTP protects it. It swallows exactly one RTP packet of this sender (RTCP
    and other senders pass); after that it only passes packets on (it stays, so
    that hooks stacked on the same method keep working). The receiver sees what
    a lost packet looks like: one sequence number and 20 ms of RTP time missing.
    (The packet stays in the sender's history, so a NACK could still recover it;
    Opus receivers normally send none.) Returns False when there is no audio
    sender or aiortc changed (then nothing is dropped, and it is logged).
    """
    sender = _audio_sender(peer, "drop_packet_after")
    if sender is None:
        return False
    done = False

    def keep(data: bytes, ssrc: int) -> bytes | None:
        nonlocal done
        if done or not _is_ours(data, ssrc):
            return data
        done = True  # one packet only
        packet = DroppedPacket(time.monotonic(), int.from_bytes(data[2:4], "big"),
                               int.from_bytes(data[4:8], "big"))
        record.append(packet)
        log.info("dropped RTP packet seq=%d ts=%d (fault)", packet.sequence_number, packet.timestamp)
        return None

    return rtc_internals.filter_sent_rtp(sender, keep)


def _rtp_payload_bytes(data: bytes) -> int:
    """The payload length of a serialized RTP packet (what an RTCP SR's octet count adds)."""
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:  # header extension
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    padding = data[-1] if data[0] & 0x20 and len(data) > offset else 0
    return max(0, len(data) - offset - padding)


class RtpPause:
    """The agent stops sending RTP audio for a while (`Faults.pause_rtp`), as with Opus DTX.

    Filters what the audio sender sends (rtc_internals.filter_sent_rtp) like `drop_next_rtp_packet`.
    While `active`, every RTP packet of the sender is swallowed; RTCP (sender and
    receiver reports) and ICE consent checks (below DTLS) keep flowing. After the
    pause each RTP packet's sequence number is lowered by the number swallowed (mod
    2**16), and each sender report's packet and octet counts by what was swallowed,
    so the receiver sees continuous sequence numbers and an RTP timestamp jump: a
    silence, not a loss. (A NACK for a renumbered packet would fetch the wrong one
    from aiortc's history; Opus receivers send none.)
    For tests: `started_at`, `ended_at` (time.monotonic()), `swallowed`.
    """

    def __init__(self) -> None:
        self.active = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.swallowed = 0
        self.swallowed_octets = 0

    def install(self, peer: "RTCPeerConnection") -> bool:
        sender = _audio_sender(peer, "pause_rtp")
        return sender is not None and rtc_internals.filter_sent_rtp(sender, self._keep)

    def _keep(self, data: bytes, ssrc: int | None) -> bytes | None:
        if _is_ours(data, ssrc):
            if self.active:
                self.swallowed += 1
                self.swallowed_octets += _rtp_payload_bytes(data)
                return None
            if self.swallowed:
                seq = (int.from_bytes(data[2:4], "big") - self.swallowed) & 0xFFFF
                data = data[:2] + seq.to_bytes(2, "big") + data[4:]
        elif self.swallowed and _is_our_sender_report(data, ssrc):
            data = self._fix_sender_report(data)
        return data

    def start(self) -> None:
        self.active = True
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.active:
            self.active = False
            self.ended_at = time.monotonic()

    def _fix_sender_report(self, data: bytes) -> bytes:
        packets = (int.from_bytes(data[20:24], "big") - self.swallowed) & 0xFFFFFFFF
        octets = (int.from_bytes(data[24:28], "big") - self.swallowed_octets) & 0xFFFFFFFF
        return data[:20] + packets.to_bytes(4, "big") + octets.to_bytes(4, "big") + data[28:]


def _is_our_sender_report(data: bytes, ssrc: int | None) -> bool:
    """A compound RTCP packet that starts with this sender's SR (PT 200)."""
    return (len(data) >= 28 and is_rtcp(data) and data[1] == 200
            and (ssrc is None or int.from_bytes(data[4:8], "big") == ssrc))
