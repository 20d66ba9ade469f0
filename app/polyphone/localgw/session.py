"""One gateway session: its aiortc answerer, its agent, and SDP/candidate helpers."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription, candidate_from_sdp

from ..audio import jitter
from ..audio.files import NullSink
from ..protocol import Candidate
from .agents import Agent, make_agent
from .faults import DroppedPacket, RtpPause

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

log = logging.getLogger(__name__)

NEGOTIATE_TIMEOUT = 10.0   # setRemoteDescription + createAnswer + setLocalDescription
PEER_CLOSE_TIMEOUT = 5.0


class BridgeFailure(Exception):
    """The offer cannot be bridged to media (MEDIA_BRIDGE_FAILURE)."""


class BadCandidate(Exception):
    """A remote ICE candidate that cannot be used (INVALID_ARGUMENT)."""


def check_offer_sdp(sdp: str) -> None:
    """Raise BridgeFailure unless the SDP parses and has an audio m-line offering Opus."""
    try:
        desc = SessionDescription.parse(sdp)
    except Exception as exc:
        raise BridgeFailure(f"the offer's SDP cannot be parsed ({type(exc).__name__})") from None
    audio = [m for m in desc.media if m.kind == "audio"]
    if not audio:
        raise BridgeFailure("the offer has no audio m-line")
    if not any(c.mimeType.lower() == "audio/opus" for m in audio for c in m.rtp.codecs):
        raise BridgeFailure("the offer's audio does not offer Opus")


def sdp_candidates(sdp: str) -> list[Candidate]:
    """The `a=candidate:` lines of an SDP, each with its m-line's mid and index."""
    found: list[tuple[int, str]] = []
    mids: dict[int, str] = {}
    index = -1
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            index += 1
        elif index < 0:
            continue
        elif line.startswith("a=mid:"):
            mids[index] = line[len("a=mid:"):]
        elif line.startswith("a=candidate:"):
            found.append((index, line[len("a="):]))
    # (a=mid may come after the candidates of its section, hence two steps)
    return [Candidate(text, mids.get(i), i) for i, text in found]


def candidate_key(text: str) -> str:
    """A candidate string without its `a=`/`candidate:` prefix, whitespace normalised."""
    text = text.strip()
    for prefix in ("a=", "candidate:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return " ".join(text.split())


def ice_configuration(ice_servers: list[dict] | None = None) -> RTCConfiguration:
    """Never aiortc's default (that is Google's STUN): no servers unless given."""
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                            credential=s.get("credential")) for s in (ice_servers or [])]
    return RTCConfiguration(iceServers=servers)


@dataclass(eq=False)
class Session:
    """A call on the gateway. Routed by `id`; `ws` is the socket it answers on now."""

    id: str
    peer: RTCPeerConnection
    agent: Agent
    agent_kind: str
    mode: str | None = None
    ws: "ServerConnection | None" = None
    state: str = "negotiating"   # negotiating -> active <-> detached -> closed
    created_at: float = field(default_factory=time.monotonic)
    offer_candidates: frozenset[str] = frozenset()
    local_candidates: list[Candidate] = field(default_factory=list)
    candidates_added: int = 0
    candidates_ignored: int = 0
    reattachments: int = 0
    close_reason: str = ""
    sinks: list[NullSink] = field(default_factory=list)
    rtp_dropped: list[DroppedPacket] = field(default_factory=list)  # Faults.drop_packet_after
    rtp_pause: RtpPause | None = None  # Faults.pause_rtp: started_at/ended_at (monotonic), swallowed
    tasks: set[asyncio.Task] = field(default_factory=set)
    grace: asyncio.TimerHandle | None = None

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def counters(self) -> dict[str, int]:
        return {"candidates_added": self.candidates_added,
                "candidates_ignored": self.candidates_ignored,
                "reattachments": self.reattachments, "rtp_dropped": len(self.rtp_dropped),
                "rtp_paused": self.rtp_pause.swallowed if self.rtp_pause is not None else 0,
                **self.agent.counters()}

    def spawn(self, coro) -> asyncio.Task:
        """A task owned by the session (cancelled when it ends)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def add_remote_candidate(self, cand: Candidate) -> bool:
        """Add a client's candidate. False when ignored (end-of-candidates, duplicate)."""
        key = candidate_key(cand.candidate)
        if not key or key in self.offer_candidates:
            self.candidates_ignored += 1
            return False
        try:
            ice = candidate_from_sdp(key)
        except Exception:
            raise BadCandidate("the ICE candidate cannot be parsed") from None
        ice.sdpMid = cand.sdp_mid
        ice.sdpMLineIndex = cand.sdp_mline_index
        if ice.sdpMid is None and ice.sdpMLineIndex is None:
            ice.sdpMLineIndex = 0
        try:
            await asyncio.wait_for(self.peer.addIceCandidate(ice), 5.0)
        except Exception as exc:
            raise BadCandidate(f"the ICE candidate was refused ({type(exc).__name__})") from None
        self.candidates_added += 1
        return True

    async def close(self) -> None:
        """Stop the agent, the sinks and the peer. Idempotent."""
        self.state = "closed"
        if self.grace is not None:
            self.grace.cancel()
            self.grace = None
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        for step in (self.agent.stop(), *(s.stop() for s in self.sinks), self.peer.close()):
            try:
                await asyncio.wait_for(step, PEER_CLOSE_TIMEOUT)
            except Exception:
                log.warning("session %s: error while closing", self.id, exc_info=True)


@dataclass(eq=False)
class _Answering:
    """What answering an offer has set up so far, so that a failed answer can be undone."""

    peer: RTCPeerConnection
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    agent: Agent | None = None
    sinks: list[NullSink] = field(default_factory=list)

    async def undo(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
        for sink in self.sinks:
            await sink.stop()
        await self.peer.close()


async def open_peer(session_id: str, offer_sdp: str, kind: str, *,
                    think_ms: float) -> tuple[RTCPeerConnection, Agent, list[NullSink]]:
    """Answer an offer: the peer (local description set), its agent and spare sinks.

    Raises BridgeFailure (with the peer closed) when the media cannot be set up.
    """
    check_offer_sdp(offer_sdp)
    answering = _Answering(RTCPeerConnection(ice_configuration(None)))
    answering.peer.on("track", answering.tracks.append)
    try:
        await asyncio.wait_for(_negotiate(answering, offer_sdp, kind, think_ms, session_id),
                               NEGOTIATE_TIMEOUT)
    except BaseException as exc:
        await answering.undo()
        if isinstance(exc, BridgeFailure):
            raise
        if isinstance(exc, Exception):
            log.info("session %s: negotiation failed: %s", session_id, exc)
            raise BridgeFailure(f"the media connection cannot be set up ({type(exc).__name__})") from None
        raise
    assert answering.agent is not None
    return answering.peer, answering.agent, answering.sinks


async def _negotiate(answering: _Answering, offer_sdp: str, kind: str, think_ms: float,
                     session_id: str = "") -> None:
    """Take the offer, answer it with an agent on the first audio track, and start the agent."""
    peer = answering.peer
    await peer.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
    audio = next((t for t in answering.tracks if t.kind == "audio"), None)
    if audio is None:
        raise BridgeFailure("the offer's audio cannot be received")
    for tr in peer.getTransceivers():
        if tr.receiver.track is audio:
            # Release audio as it arrives, like a libwebrtc gateway; aiortc's
            # stock buffer would add 80 ms and stall on loss (audio/jitter.py).
            jitter.install(tr.receiver)
    agent = answering.agent = make_agent(kind, think_ms=think_ms, session_id=session_id)
    peer.addTrack(agent.output)
    # Only the first audio m-line carries the call; silence the others.
    for tr in peer.getTransceivers():
        if tr.receiver.track is not audio:
            tr.direction = "inactive"
    await peer.setLocalDescription(await peer.createAnswer())
    agent.start(audio)
    _drain_other_tracks(answering, audio)


def _drain_other_tracks(answering: _Answering, audio: MediaStreamTrack) -> None:
    """Read every received track but the call's audio into a NullSink: never leave one unread."""
    for other in answering.tracks:
        if other is not audio:
            sink = NullSink()
            sink.start(other)
            answering.sinks.append(sink)
