"""When the local gateway misbehaves on a session (`Faults`), from its answer on.

`after_answer` runs once the answer and the gateway's candidates are sent: it
sends the extra frames (bad candidates, malformed frames) and schedules the
timed faults as session tasks (cancelled when the session ends). Each delay is
counted from the answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..protocol import Close
from .faults import (
    CLOSE_WITHOUT_SESSION,
    RtpPause,
    bad_candidate_frames,
    drop_next_rtp_packet,
    error_shape_text,
    malformed_frame_texts,
)
from .impair import impair_peer

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection
    from websockets.asyncio.server import ServerConnection

    from .server import LocalGateway
    from .session import Session

log = logging.getLogger(__name__)

SOCKET_CLOSE_TIMEOUT = 5.0


async def refuse_offer(gateway: "LocalGateway", ws: "ServerConnection", session_id: str) -> bool:
    """True when a fault answers a valid offer (or leaves it unanswered) in the gateway's place."""
    faults = gateway.faults
    if faults.error_shape:  # raw text: protocol.encode always writes a code
        gateway.errors_sent += 1
        gateway.log.info("-> error frame of shape %s (fault)", faults.error_shape)
        await gateway.send(ws, error_shape_text(faults.error_shape))
        return True
    if faults.error_code:
        await gateway.send_error(ws, session_id, faults.error_code, "Injected fault")
        return True
    if faults.never_answer:
        gateway.log.info("offer received; never answering (fault)")
        return True
    return False


def impair_media(gateway: "LocalGateway", session_id: str, peer: "RTCPeerConnection") -> None:
    """Put `Faults.impair` on a new session's media sockets."""
    if gateway.faults.impair is not None and gateway.faults.impair.active:
        impair_peer(peer, gateway.faults.impair)
        gateway.log.info("session %s: media impaired (%s)", session_id, gateway.faults.impair)


async def after_answer(gateway: "LocalGateway", session: "Session") -> None:
    faults = gateway.faults
    if faults.bad_candidates:
        for text in bad_candidate_frames(session.id, session.local_candidates):
            await gateway.send(session.ws, text)
    if faults.malformed_frames:
        for text in malformed_frame_texts(session.id):
            await gateway.send(session.ws, text)
    if faults.drop_socket_after is not None:
        session.spawn(drop_socket_later(gateway, session, faults.drop_socket_after))
    if faults.close_after is not None:
        session.spawn(close_later(gateway, session, faults.close_after))
    if faults.hangup_after is not None:
        session.spawn(hang_up_later(gateway, session, faults.hangup_after))
    if faults.drop_packet_after is not None:
        session.spawn(drop_packet_later(gateway, session, faults.drop_packet_after))
    if faults.pause_rtp is not None:
        session.spawn(pause_rtp_later(gateway, session, *faults.pause_rtp))


async def close_later(gateway: "LocalGateway", session: "Session", delay: float) -> None:
    if await gateway.pause(delay) or session.closed:
        return
    frame = CLOSE_WITHOUT_SESSION if gateway.faults.close_without_session else Close(session.id)
    await gateway.send(session.ws, frame)
    await gateway.end_session(session, "closed by the agent")


async def hang_up_later(gateway: "LocalGateway", session: "Session", delay: float) -> None:
    """Like a server whose agent hung up: peer and websocket torn down at once, no `close` frame."""
    if await gateway.pause(delay) or session.closed:
        return
    faults = gateway.faults
    gateway.log.info("session %s: hanging up (close code %d, fault)", session.id, faults.hangup_code)
    if session.ws is not None:
        # A gateway task: ending the session cancels this one, and the close must not be cut short.
        gateway.spawn(close_socket(session.ws, faults.hangup_code, faults.hangup_reason))
    await gateway.end_session(session, "hung up by the agent")


async def close_socket(ws: "ServerConnection", code: int, reason: str) -> None:
    """The websocket closing handshake with this code and reason (bounded)."""
    try:
        await asyncio.wait_for(ws.close(code, reason), SOCKET_CLOSE_TIMEOUT)
    except asyncio.TimeoutError:
        ws.transport.abort()
    except Exception:
        log.warning("local gateway: closing a socket failed", exc_info=True)


async def drop_packet_later(gateway: "LocalGateway", session: "Session", delay: float) -> None:
    if await gateway.pause(delay) or session.closed:
        return
    gateway.log.info("session %s: dropping one outbound RTP audio packet (fault)", session.id)
    drop_next_rtp_packet(session.peer, session.rtp_dropped)


async def pause_rtp_later(gateway: "LocalGateway", session: "Session", start: float,
                          length: float) -> None:
    if await gateway.pause(start) or session.closed:
        return
    pause = RtpPause()
    if not pause.install(session.peer):
        return
    session.rtp_pause = pause
    gateway.log.info("session %s: no RTP audio for %.3g s (fault)", session.id, length)
    pause.start()
    try:
        await gateway.pause(length)
    finally:
        pause.stop()
    gateway.log.info("session %s: RTP audio resumes after %d packets (fault)", session.id,
                     pause.swallowed)


async def drop_socket_later(gateway: "LocalGateway", session: "Session", delay: float) -> None:
    if await gateway.pause(delay) or session.closed or session.ws is None:
        return
    gateway.log.info("session %s: dropping its socket (fault)", session.id)
    session.ws.transport.abort()
