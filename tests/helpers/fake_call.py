"""The call state machine's ports as in-memory fakes, and a harness that drives a `Call` on them."""

from __future__ import annotations

import asyncio

from helpers.waits import until
from polyphone import protocol
from polyphone.audio.files import NullSink, SilenceSource
from polyphone.engine.call import Call
from polyphone.engine.events import CallState, StateChanged
from polyphone.engine.request import CallRequest, Timeouts
from polyphone.engine.signaling import SignalingError

SID = "sess-1"


class FakeSignaling:
    def __init__(self, url: str, *, fail_connect: SignalingError | None = None) -> None:
        self.url = url
        self.sent: list[protocol.Message] = []
        self.on_message = lambda m: None
        self.on_state = lambda s: None
        self.on_log = lambda level, text: None
        self.on_resumed = None
        self.on_lost = lambda e: None
        self.on_closed = lambda c: None
        self.resumable = False
        self.reconnects = 0
        self.closed = False
        self._fail_connect = fail_connect
        self.offer_sent = asyncio.Event()

    async def connect(self) -> None:
        if self._fail_connect:
            raise self._fail_connect

    async def send(self, msg: protocol.Message) -> None:
        if self.closed:
            raise SignalingError("closed")
        self.sent.append(msg)
        if isinstance(msg, protocol.Offer):
            self.offer_sent.set()

    async def close(self) -> None:
        self.closed = True

    def deliver(self, msg: protocol.Message) -> None:
        self.on_message(msg)

    def sent_types(self) -> list[str]:
        return [m.type for m in self.sent]


class FakePeer:
    def __init__(self, servers, source) -> None:
        self.on_state = lambda c, s: None
        self.on_track = lambda t: None
        self.on_log = lambda level, text: None
        self.gather_budget = 0.0
        self.heard_at: float | None = None  # what last_heard() says (None: the stack cannot tell)
        self.answer_sdp: str | None = None
        self.remote: list[protocol.Candidate] = []
        self.held: list[protocol.Candidate] = []
        self.closed = False

    async def create_offer(self) -> str:
        return "v=0 fake offer"

    def local_candidates(self) -> list[protocol.Candidate]:
        return [protocol.Candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host", "0", 0)]

    async def apply_answer(self, sdp: str) -> None:
        self.answer_sdp = sdp
        self.remote.extend(self.held)
        self.held.clear()

    async def add_remote_candidate(self, cand: protocol.Candidate) -> bool:
        (self.remote if self.answer_sdp else self.held).append(cand)
        return True

    def selected_pair(self):
        return None

    def last_heard(self) -> float | None:
        return self.heard_at

    async def stats(self):
        from polyphone.engine.events import StatsSample
        return StatsSample(rtt_ms=1.0)

    async def close(self) -> None:
        self.closed = True


class Harness:
    def __init__(self, timeouts: Timeouts | None = None, **sig_kwargs) -> None:
        self.events: list = []
        self.signaling: FakeSignaling | None = None
        self.peer: FakePeer | None = None
        request = CallRequest(url="ws://127.0.0.1:1/x", token="secret-token-123",
                              fetch_ice_servers=False, timeouts=timeouts or Timeouts())

        def make_sig(url: str) -> FakeSignaling:
            self.signaling = FakeSignaling(url, **sig_kwargs)
            return self.signaling

        def make_peer(servers, source) -> FakePeer:
            self.peer = FakePeer(servers, source)
            return self.peer

        self.call = Call(request, SilenceSource(), NullSink(), self.events.append,
                         signaling_factory=make_sig, peer_factory=make_peer)

    def states(self) -> list[CallState]:
        return [e.state for e in self.events if isinstance(e, StateChanged)]

    async def start(self) -> asyncio.Task:
        task = asyncio.ensure_future(self.call.run())
        await until(lambda: self.signaling is not None and self.signaling.offer_sent.is_set(), 1.0, 0.01,
                    "the offer to be sent")
        return task

    async def answer(self, sid: str = SID) -> None:
        assert self.signaling is not None
        self.signaling.deliver(protocol.Answer(sid, "v=0 fake answer"))
        await asyncio.sleep(0.02)

    async def connect(self) -> None:
        await self.answer()
        assert self.peer is not None
        self.peer.on_state("peer", "connected")
        await asyncio.sleep(0.01)
