"""Helpers for tests that call the local gateway: a real aiortc caller.

No pytest here (tests/integration/conftest.py wraps these in fixtures). Every
peer is made with `iceServers=[]`, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from helpers.waits import until
from polyphone import protocol
from polyphone.audio.files import MemorySink, PacedSource, tone


@dataclass
class Offerer:
    """A real aiortc caller: its peer, the track it sends, and what it receives."""

    pc: RTCPeerConnection
    source: MediaStreamTrack
    sink: MemorySink = field(default_factory=MemorySink)

    @property
    def sdp(self) -> str:
        return self.pc.localDescription.sdp

    def offer(self, token: str | None = "token", **fields: Any) -> str:
        """The encoded offer frame for this peer (fields as in `protocol.Offer`)."""
        return protocol.encode(protocol.Offer(sdp=self.sdp, auth_token=token, **fields))

    async def accept(self, answer: protocol.Answer) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await wait_until(lambda: self.pc.connectionState == "connected", timeout,
                         f"peer connected (state {self.pc.connectionState})")

    async def close(self) -> None:
        await self.sink.stop()
        await self.pc.close()


async def make_offerer(samples: np.ndarray | None = None, *, loop: bool = False,
                       codecs: list[str] | None = None) -> Offerer:
    """An aiortc peer sending `samples` (default: 1 s of 440 Hz), its offer made.

    `codecs` restricts the offered audio codecs by MIME type, e.g. ["audio/PCMU"].
    """
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    source = PacedSource(tone(440.0, 1.0) if samples is None else samples, loop=loop)
    offerer = Offerer(pc, source)
    transceiver = pc.addTransceiver(source, direction="sendrecv")
    if codecs is not None:
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType in codecs])
    pc.on("track", offerer.sink.start)
    await pc.setLocalDescription(await pc.createOffer())
    return offerer


async def recv_message(ws: Any, timeout: float = 5.0) -> protocol.Message:
    """The next frame from a websocket, parsed (raises ProtocolError if invalid)."""
    return protocol.parse(await asyncio.wait_for(ws.recv(), timeout))


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll `predicate` every 20 ms; AssertionError naming `what` after `timeout` s
    (`helpers.waits.until`, with the argument order the gateway tests use)."""
    await until(predicate, timeout, 0.02, what)
