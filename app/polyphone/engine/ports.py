"""The call's collaborators as ports (signaling, peer, ICE servers, audio sink) and what a call returns.

Ports and adapters, as PolyAI's Android SDK's `CallCoordinator` does: `Call` runs on any
implementation of these, so unit tests run the state machine on in-memory fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

from aiortc.mediastreams import MediaStreamTrack

from .. import protocol
from . import ice
from .events import CallError, CallState, SelectedPair, StatsSample
from .request import CallRequest
from .signaling import SignalingError, SocketClosed


class SignalingPort(Protocol):
    on_message: Callable[[protocol.Message], None]
    on_state: Callable[[str], None]
    on_log: Callable[[str, str], None]
    on_resumed: Callable[[], Awaitable[None]] | None
    on_lost: Callable[[SignalingError], None]
    on_closed: Callable[[SocketClosed], None]
    resumable: bool
    reconnects: int

    async def connect(self) -> None: ...
    async def send(self, msg: protocol.Message) -> None: ...
    async def close(self) -> None: ...


class PeerPort(Protocol):
    on_state: Callable[[str, str], None]
    on_track: Callable[[MediaStreamTrack], None]
    on_log: Callable[[str, str], None]
    gather_budget: float

    async def create_offer(self) -> str: ...
    def local_candidates(self) -> list[protocol.Candidate]: ...
    async def apply_answer(self, sdp: str) -> None: ...
    async def add_remote_candidate(self, cand: protocol.Candidate) -> bool: ...
    def selected_pair(self) -> SelectedPair | None: ...
    def last_heard(self) -> float | None: ...
    async def stats(self) -> StatsSample: ...
    async def close(self) -> None: ...


class AudioSink(Protocol):
    """Where remote audio goes: `start(track)` begins reading, `stop()` ends and flushes."""

    def start(self, track: MediaStreamTrack) -> None: ...

    async def stop(self) -> None: ...


IceFetcher = Callable[[CallRequest], Awaitable[tuple[list[ice.IceServer] | None, str]]]


async def fetch_ice(request: CallRequest) -> tuple[list[ice.IceServer] | None, str]:
    return await ice.fetch_gateway_servers(request.url, request.token, ca_file=request.ca_file)


@dataclass
class CallResult:
    state: CallState = CallState.IDLE
    session_id: str = ""
    call_sid: str = ""
    error: CallError | None = None
    reason: str = ""
    connected: bool = False
    timings_ms: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(
        ("ws_open", "answer", "ice_connected", "first_audio")))
    stats: StatsSample | None = None
    duration_s: float = 0.0
    reconnects: int = 0

    @property
    def ok(self) -> bool:
        return self.state is CallState.ENDED and self.connected and self.error is None
