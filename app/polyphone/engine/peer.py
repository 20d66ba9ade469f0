"""Peer: the aiortc RTCPeerConnection of one call (offer, answer, candidates, stats).

aiortc writes its candidates into the SDP and never fires `icecandidate`, so
`local_candidates()` reads them back out of the local description for the
call to send as `ice-candidate` frames (a trickle-only gateway works too).
Remote candidates that arrive before the answer is applied are held.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from .. import protocol, rtc_internals
from ..audio import jitter
from .events import CandidateInfo, SelectedPair, StatsSample
from .ice import IceServer, apply_gather_budget

StateCallback = Callable[[str, str], None]  # (component, state)
MAX_HELD = 64  # remote candidates held until the answer is applied


class PeerError(Exception):
    pass


class Peer:
    def __init__(self, ice_servers: list[IceServer], source: MediaStreamTrack) -> None:
        self.ice_servers = ice_servers
        config = RTCConfiguration(iceServers=[s.to_rtc() for s in ice_servers])
        self.pc = RTCPeerConnection(configuration=config)
        self.on_state: StateCallback = lambda component, state: None
        self.on_track: Callable[[MediaStreamTrack], None] = lambda track: None
        self.on_log: Callable[[str, str], None] = lambda level, text: None
        self._source = source
        self._answered = False
        self._held: list[protocol.Candidate] = []
        self._seen_remote: set[str] = set()
        self._last_bytes: tuple[float, int, int] | None = None
        self.gather_budget = 0.0
        self._activity: rtc_internals.Activity | None = None
        pc = self.pc

        @pc.on("connectionstatechange")
        def _conn() -> None:
            self.on_state("peer", pc.connectionState)

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            self.on_state("ice-connection", pc.iceConnectionState)

        @pc.on("icegatheringstatechange")
        def _gathering() -> None:
            self.on_state("ice-gathering", pc.iceGatheringState)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.on_track(track)

    async def create_offer(self) -> str:
        """Add the audio track (Opus only, send and receive), gather, return the offer SDP."""
        transceiver = self.pc.addTransceiver(self._source, direction="sendrecv")
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs
                if c.mimeType.lower() == "audio/opus"]
        transceiver.setCodecPreferences(opus)
        self.jitter = jitter.install(transceiver.receiver)
        dtls = transceiver.sender.transport

        @dtls.on("statechange")
        def _dtls() -> None:
            self.on_state("dtls", dtls.state)

        self.gather_budget = apply_gather_budget(self.pc, self.ice_servers)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._activity = rtc_internals.watch_activity(self.pc)
        return self.pc.localDescription.sdp

    def local_candidates(self) -> list[protocol.Candidate]:
        """The candidates aiortc wrote into the local SDP, in trickle form."""
        desc = self.pc.localDescription
        if desc is None:
            return []
        out: list[protocol.Candidate] = []
        mid: str | None = None
        index = -1
        for line in desc.sdp.splitlines():
            if line.startswith("m="):
                index += 1
                mid = None
            elif line.startswith("a=mid:"):
                mid = line[len("a=mid:"):].strip()
            elif line.startswith("a=candidate:") and index >= 0:
                out.append(protocol.Candidate(line[2:].strip(), mid, index))
        return out

    async def apply_answer(self, sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError, InvalidStateError, ...
            raise PeerError(f"the gateway's answer could not be applied: {exc}"[:300]) from None
        self._answered = True
        for line in sdp.splitlines():
            if line.startswith("a=candidate:"):
                self._seen_remote.add(_candidate_key(line[2:]))
        held, self._held = self._held, []
        for cand in held:
            try:
                await self.add_remote_candidate(cand)
            except PeerError as exc:
                self.on_log("warning", str(exc))

    @property
    def answered(self) -> bool:
        return self._answered

    async def add_remote_candidate(self, cand: protocol.Candidate) -> bool:
        """Add (or hold, before the answer) one remote candidate. False if it was skipped: an
        empty one (end-of-candidates) or a duplicate. PeerError for one that cannot be used (a
        malformed line, or one aiortc refuses): the caller logs it and the call goes on."""
        text = cand.candidate.strip()
        if not text:
            return False  # end-of-candidates
        if not self._answered:
            if len(self._held) >= MAX_HELD:
                raise PeerError(f"more than {MAX_HELD} remote candidates before the answer; "
                                f"skipped {text[:60]!r}")
            self._held.append(cand)
            return True
        key = _candidate_key(text)
        if key in self._seen_remote:
            return False
        try:
            rtc = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
            rtc.sdpMid = cand.sdp_mid if cand.sdp_mid is not None else self._mid_of(cand.sdp_mline_index)
            rtc.sdpMLineIndex = cand.sdp_mline_index if cand.sdp_mline_index is not None else 0
            await self.pc.addIceCandidate(rtc)
        except Exception as exc:  # ValueError, IndexError, AssertionError... inside aiortc
            raise PeerError(f"skipped an unusable remote candidate {text[:80]!r} "
                            f"({type(exc).__name__}: {str(exc)[:80]})") from None
        self._seen_remote.add(key)
        return True

    def _mid_of(self, index: int | None) -> str | None:
        """The mid of the m-line `index` (0 when none is given) in the local description."""
        mids = [t.mid for t in self.pc.getTransceivers()]
        i = index or 0
        return mids[i] if 0 <= i < len(mids) else None

    def last_heard(self) -> float | None:
        """time.monotonic() of the last datagram or STUN request from the gateway; None when
        the stack cannot tell (then only RTP says the call is alive)."""
        return self._activity.last_at if self._activity is not None else None

    def selected_pair(self) -> SelectedPair | None:
        """The nominated candidate pair; None before ICE connects or when aiortc changed."""
        pair = rtc_internals.nominated_pair(self.pc)
        if pair is None:
            return None
        lc, rc = pair
        return SelectedPair(
            local=CandidateInfo(lc.type, lc.transport.lower(), lc.host, lc.port),
            remote=CandidateInfo(rc.type, rc.transport.lower(), rc.host, rc.port))

    async def stats(self) -> StatsSample:
        report = await self.pc.getStats()
        s: dict = {"codec": None}
        sent = recv = 0
        for item in report.values():
            kind = getattr(item, "type", "")
            if kind == "outbound-rtp":
                s["packets_sent"] = item.packetsSent
                sent = item.bytesSent
            elif kind == "inbound-rtp":
                s["packets_received"] = item.packetsReceived
                s["packets_lost"] = max(0, item.packetsLost)
                s["jitter_ms"] = item.jitter / 48.0 if item.jitter is not None else None
            elif kind == "remote-inbound-rtp":
                if item.roundTripTime is not None:
                    s["rtt_ms"] = item.roundTripTime * 1000.0
                s["fraction_lost"] = item.fractionLost
            elif kind == "transport":
                recv = item.bytesReceived
        now = time.monotonic()
        send_kbps = recv_kbps = 0.0
        if self._last_bytes is not None:
            t0, s0, r0 = self._last_bytes
            dt = max(now - t0, 1e-3)
            send_kbps = max(0, sent - s0) * 8 / dt / 1000
            recv_kbps = max(0, recv - r0) * 8 / dt / 1000
        self._last_bytes = (now, sent, recv)
        codec = rtc_internals.negotiated_codec(self.pc)
        if codec is not None:
            s["codec"] = f"{codec.mimeType.split('/')[-1]}/{codec.clockRate}"
        return StatsSample(send_kbps=send_kbps, recv_kbps=recv_kbps, bytes_sent=sent,
                           bytes_received=recv, **s)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 3.0)


def _candidate_key(text: str) -> str:
    """foundation, component, transport, address, port: what makes a candidate the same."""
    parts = text.strip().removeprefix("candidate:").split()
    return " ".join(parts[:3] + parts[4:6]).lower() if len(parts) >= 6 else text.strip()
