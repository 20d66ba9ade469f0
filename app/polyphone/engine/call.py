"""Call: the state machine that drives signaling, the peer and the audio of one call.

IDLE -> CONNECTING -> NEGOTIATING -> CONNECTED -> ENDING -> ENDED | FAILED.
Every path out goes through one idempotent teardown (`_finish`), which sends
`close` whenever a sessionId exists. Collaborators are ports (`SignalingPort`,
`PeerPort`), so unit tests run the machine on in-memory fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Awaitable, Callable

from aiortc.mediastreams import MediaStreamTrack

from .. import protocol
from ..aio import cancel_all
from ..protocol import CloseKind
from . import ice
from .events import (
    AGENT_HUNG_UP,
    YOU_HUNG_UP,
    CallError,
    CallState,
    ConnectionChanged,
    ErrorKind,
    Event,
    Listener,
    LogLine,
    SessionStarted,
    StateChanged,
)
from .monitor import MediaMonitor
from .peer import Peer, PeerError
from .ports import AudioSink, CallResult, IceFetcher, PeerPort, SignalingPort, fetch_ice
from .request import CallRequest
from .signaling import SignalingClient, SignalingError, SignalingOptions, SocketClosed, redact_url
from .tap import MediaTap
from .timers import Timers

__all__ = ["TRANSITIONS", "Call", "CallResult"]

TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.IDLE: frozenset({CallState.CONNECTING, CallState.ENDING}),
    CallState.CONNECTING: frozenset({CallState.NEGOTIATING, CallState.ENDING}),
    CallState.NEGOTIATING: frozenset({CallState.CONNECTED, CallState.ENDING}),
    CallState.CONNECTED: frozenset({CallState.ENDING}),
    CallState.ENDING: frozenset({CallState.ENDED, CallState.FAILED}),
    CallState.ENDED: frozenset(),
    CallState.FAILED: frozenset(),
}


class Call:
    def __init__(self, request: CallRequest, source: MediaStreamTrack, sink: AudioSink,
                 listener: Listener | None = None, *,
                 signaling_factory: Callable[[str], SignalingPort] | None = None,
                 peer_factory: Callable[[list[ice.IceServer], MediaStreamTrack], PeerPort] | None = None,
                 ice_fetcher: IceFetcher = fetch_ice) -> None:
        self.request = request
        self.source, self.sink = source, sink
        self._listener = listener or (lambda e: None)
        self._signaling_factory = signaling_factory or (lambda url: SignalingClient(
            url, SignalingOptions(connect_timeout=request.timeouts.ws_open, ca_file=request.ca_file)))
        self._peer_factory = peer_factory or Peer
        self._ice_fetcher = ice_fetcher
        self.state = CallState.IDLE
        self.result = CallResult(call_sid=request.new_call_sid())
        self.signaling: SignalingPort | None = None
        self.peer: PeerPort | None = None
        self.tap: MediaTap | None = None
        self.monitor: MediaMonitor | None = None
        self._timers = Timers()
        self._signaling_state = ""
        self._t0 = 0.0
        self._connected_at: float | None = None
        self._inbox: asyncio.Queue[protocol.Message] = asyncio.Queue(maxsize=256)
        self._tasks: list[asyncio.Task] = []
        self._teardown: asyncio.Task | None = None
        self._done: asyncio.Future[CallResult] | None = None

    # --- public -------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.result.session_id

    async def run(self) -> CallResult:
        """Place the call; returns when it has ended (ENDED or FAILED)."""
        self._done = asyncio.get_running_loop().create_future()
        self._t0 = time.monotonic()
        self._set_state(CallState.CONNECTING, "dialling")
        self._timers.start("connect", self.request.timeouts.connect, lambda: self._fail(
            ErrorKind.TIMEOUT, f"The call did not connect within {self.request.timeouts.connect:g} s.",
            "Check your network connection (UDP, firewall) and call again."))
        self._spawn(self._setup())
        self._spawn(self._process_inbox())
        return await asyncio.shield(self._done)

    async def hangup(self, reason: str = YOU_HUNG_UP) -> CallResult:
        self._finish(CallState.ENDED, reason=reason)
        return await self.wait()

    async def wait(self) -> CallResult:
        if self._done is None:
            return self.result
        return await asyncio.shield(self._done)

    # --- state --------------------------------------------------------------

    def _set_state(self, new: CallState, reason: str = "") -> None:
        old = self.state
        if new is old:
            return
        if new not in TRANSITIONS[old]:
            self._log("error", "call", f"refused state change {old.value} -> {new.value}")
            return
        self.state = new
        self._log("info", "call", f"{old.value} -> {new.value}" + (f" ({reason})" if reason else ""))
        self._emit(StateChanged(new, old, reason))

    def _emit(self, event: Event) -> None:
        try:
            self._listener(event)
        except Exception as exc:  # a listener's bug must not break the call
            with contextlib.suppress(Exception):
                self._listener(LogLine("error", "call", f"event listener failed: {exc!r}"[:200]))

    def _log(self, level: str, source: str, text: str) -> None:
        self._emit(LogLine(level, source, text))

    def _elapsed_ms(self) -> float:
        return round((time.monotonic() - self._t0) * 1000, 1)

    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._fail(ErrorKind.INTERNAL, "Polyphone hit an internal error during the call.",
                       "Call again; if it persists, report it with the event log.",
                       detail=f"{type(exc).__name__}: {exc}"[:300])

    # --- setup --------------------------------------------------------------

    async def _setup(self) -> None:
        req = self.request
        try:
            sig = self.signaling = self._signaling_factory(req.url)
        except SignalingError as exc:
            self._fail(ErrorKind.CONFIG, exc.message, exc.action)
            return
        sig.on_message = self._on_message
        sig.on_state = self._on_signaling_state
        sig.on_log = lambda level, text: self._log(level, "signaling", text)
        sig.on_lost = lambda exc: self._fail(ErrorKind.NETWORK, exc.message, exc.action)
        sig.on_closed = self._on_socket_closed
        sig.on_resumed = self._on_resumed
        fetch = asyncio.ensure_future(self._ice_fetcher(req)) if req.fetch_ice_servers else None
        try:
            self._log("info", "signaling", f"connecting to {redact_url(req.url)}")
            await sig.connect()
        except SignalingError as exc:
            if fetch is not None:
                fetch.cancel()
            kind = ErrorKind.CONFIG if exc.config else ErrorKind.NETWORK
            self._fail(kind, exc.message, exc.action)
            return
        self.result.timings_ms["ws_open"] = self._elapsed_ms()
        servers = await ice.servers_for_call(
            req.url, req.ice_servers, fetch, lambda level, text: self._log(level, "ice", text),
            ended=lambda: self.state.is_final)
        peer = self.peer = self._peer_factory(servers, self.source)
        peer.on_state = self._on_peer_state
        peer.on_track = self._on_track
        peer.on_log = lambda level, text: self._log(level, "peer", text)
        sdp = await peer.create_offer()
        self._log("info", "ice", f"gathered {len(peer.local_candidates())} local candidates "
                                 f"(STUN/TURN budget {peer.gather_budget:g} s)")
        self._set_state(CallState.NEGOTIATING, "offer sent")
        self._timers.start("answer", req.timeouts.answer, lambda: self._fail(
            ErrorKind.TIMEOUT, f"The gateway did not answer the call within {req.timeouts.answer:g} s.",
            "The gateway may be overloaded or unreachable; try again in a moment."))
        try:
            await sig.send(req.offer(sdp, self.result.call_sid))
        except SignalingError as exc:
            self._fail(ErrorKind.NETWORK, "The gateway closed the connection before the call "
                                          "could be placed.", exc.action)

    # --- inbound signaling --------------------------------------------------

    def _on_message(self, msg: protocol.Message) -> None:
        try:
            self._inbox.put_nowait(msg)
        except asyncio.QueueFull:
            self._log("warning", "signaling", f"dropped a {msg.type} frame: too many queued")

    async def _process_inbox(self) -> None:
        while True:
            msg = await self._inbox.get()
            if self._teardown is not None and not isinstance(msg, protocol.Pong):
                continue
            try:
                await self._handle(msg)
            except PeerError as exc:
                self._log("warning", "peer", str(exc))
            except SignalingError as exc:
                self._log("warning", "signaling", exc.message)

    def _foreign(self, msg: protocol.Message) -> bool:
        """True for a frame that names another session than ours."""
        mine = self.result.session_id
        if mine and msg.session_id and msg.session_id != mine:
            self._log("warning", "signaling",
                      f"ignored a {msg.type} frame for another session")
            return True
        return False

    async def _handle(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Answer):
            await self._on_answer(msg)
        elif isinstance(msg, protocol.Offer):
            self._log("warning", "signaling", "ignored an offer from the gateway")
        elif isinstance(msg, protocol.Pong) or self._foreign(msg):
            return
        elif isinstance(msg, protocol.IceCandidate) and self.peer is not None:
            if not await self.peer.add_remote_candidate(cand := msg.candidate):
                self._log("debug", "ice", "skipped a duplicate remote candidate"
                          if cand.candidate.strip() else "end of the gateway's candidates")
        elif isinstance(msg, protocol.Close):
            self._finish(CallState.ENDED, reason=AGENT_HUNG_UP)
        elif isinstance(msg, protocol.Error):
            what, action = protocol.gateway_error_words(msg.code, msg.message)
            detail = protocol.clean_text(msg.message)
            self._fail(ErrorKind.GATEWAY, what, action, code=msg.code, detail=detail)

    async def _on_answer(self, msg: protocol.Answer) -> None:
        if self.result.session_id:
            which = "duplicate" if msg.session_id == self.result.session_id else "another session's"
            self._log("warning", "signaling", f"ignored a {which} answer")
            return
        if self.state is not CallState.NEGOTIATING or self.peer is None:
            self._log("warning", "signaling", f"ignored an answer in state {self.state.value}")
            return
        self._timers.cancel("answer")
        self.result.session_id = msg.session_id
        self.result.timings_ms["answer"] = self._elapsed_ms()
        self._emit(SessionStarted(msg.session_id, self.result.call_sid))
        try:
            await self.peer.apply_answer(msg.sdp)
        except PeerError as exc:
            self._fail(ErrorKind.PROTOCOL, "The gateway's answer could not be used.",
                       "Call again; if it persists, report it with the event log.", detail=str(exc))
            return
        if self.signaling is not None:
            self.signaling.resumable = True
        await self._send_local_candidates()

    async def _send_local_candidates(self) -> None:
        if self.peer is None or self.signaling is None or not self.result.session_id:
            return
        for cand in self.peer.local_candidates():
            await self.signaling.send(protocol.IceCandidate(self.result.session_id, cand))

    def _on_socket_closed(self, closed: SocketClosed) -> None:
        """The gateway closed the socket on purpose: after connecting, 1000/1001 is the agent
        hanging up; anything else (or any close before the call connected) is terminal."""
        if closed.kind is CloseKind.HANGUP and self.result.connected:
            self._finish(CallState.ENDED, reason=AGENT_HUNG_UP)
            return
        when = "" if self.result.connected else " before the call connected"
        self._fail(ErrorKind.CLOSED, f"The gateway closed the connection{when} ({closed.describe()}).",
                   protocol.closes.action(closed.code), detail=protocol.clean_text(closed.reason),
                   close_code=closed.code)

    async def _on_resumed(self) -> None:
        # A frame with our sessionId attaches the new socket to the session.
        self._log("info", "signaling", "resuming the session on the new connection")
        await self._send_local_candidates()

    # --- peer and media -----------------------------------------------------

    def _on_peer_state(self, component: str, state: str) -> None:
        self._emit(ConnectionChanged(component, state))
        if component == "ice-connection" and state in ("connected", "completed"):
            if self.result.timings_ms["ice_connected"] is None:
                self.result.timings_ms["ice_connected"] = self._elapsed_ms()
        if component != "peer" or self._teardown is not None:
            return
        if state == "connected":
            self._timers.cancel("grace")
            if self.state is CallState.NEGOTIATING:
                self._on_connected()
        elif state == "disconnected":
            self._log("warning", "ice", "media path interrupted; waiting "
                                        f"{self.request.timeouts.disconnect_grace:g} s")
            self._timers.start("grace", self.request.timeouts.disconnect_grace, lambda: self._fail(
                ErrorKind.ICE, "The audio connection was lost and did not come back.",
                "Check your network connection and call again."))
        elif state in ("failed", "closed") and not self._timers.running("peer-down"):
            # A gateway that hangs up tears the peer down in the same moment as it closes the
            # socket or sends `close`/`error`: give those a moment to say why, so the cause
            # shown is theirs, never "ICE".
            self._timers.start("peer-down", self.request.timeouts.peer_down_settle, self._on_peer_down)

    def _on_peer_down(self) -> None:
        if self._signaling_state == "reconnecting":
            # The socket dropped too: what the gateway says on the new one (or the end of the
            # retries) is the cause; that wait is bounded by the signaling's own retries.
            self._timers.start("peer-down", self.request.timeouts.peer_down_settle, self._on_peer_down)
            return
        self._fail(ErrorKind.ICE, "The audio connection to the gateway failed (ICE).",
                   "Check that your network allows UDP, or configure a TURN server.")

    def _on_signaling_state(self, state: str) -> None:
        previous, self._signaling_state = self._signaling_state, state
        if previous == "reconnecting" and state == "open" and self._timers.running("peer-down"):
            # resumed: what the gateway says on the new socket gets a whole settle time
            self._timers.start("peer-down", self.request.timeouts.peer_down_settle, self._on_peer_down)
        self._emit(ConnectionChanged("signaling", state))

    def _on_connected(self) -> None:
        assert self.peer is not None
        self._timers.cancel("connect")
        self.result.connected = True
        self._set_state(CallState.CONNECTED, "audio connected")
        monitor = self.monitor = MediaMonitor(self.peer, self.request.timeouts, lambda: self.tap,
                                              self._emit, self._log)
        self._connected_at = monitor.connected_at
        monitor.report_pair()
        self._spawn(monitor.stats(lambda sample: setattr(self.result, "stats", sample)))
        self._spawn(self._watch(monitor))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.tap = MediaTap(track)
        self.sink.start(self.tap)

    async def _watch(self, monitor: MediaMonitor) -> None:
        def first_audio(at: float) -> None:
            self.result.timings_ms["first_audio"] = round((at - self._t0) * 1000, 1)

        await monitor.watch(first_audio)
        self._fail(ErrorKind.TIMEOUT, f"The audio from the agent stopped and did not return within "
                                      f"{self.request.timeouts.media_lost:g} s.",
                   "Check your network connection, then call again.")

    # --- teardown -----------------------------------------------------------

    def _fail(self, kind: ErrorKind, message: str, action: str = "", *, code: str | None = None,
              detail: str = "", close_code: int | None = None) -> None:
        self._finish(CallState.FAILED, CallError(kind, message, action, code, detail, close_code=close_code),
                     message)

    def _finish(self, final: CallState, error: CallError | None = None, reason: str = "") -> None:
        """Start the one teardown (idempotent: later calls are ignored)."""
        if self._teardown is not None or self.state.is_final:
            return
        if self._done is None:  # never started
            self._done = asyncio.get_running_loop().create_future()
        self._teardown = asyncio.ensure_future(self._tear_down(final, error, reason))

    async def _tear_down(self, final: CallState, error: CallError | None, reason: str) -> None:
        self._set_state(CallState.ENDING, reason)
        if error is not None:
            self.result.error = error
            self._log("error", "call", str(error))
            self._emit(error)
        self._timers.cancel_all()
        await cancel_all(self._tasks)
        sig, peer = self.signaling, self.peer
        if sig is not None and self.result.session_id:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sig.send(protocol.Close(self.result.session_id)),
                                       self.request.timeouts.close_send)
        if peer is not None:
            await peer.close()
        if sig is not None:
            self.result.reconnects = sig.reconnects
            await sig.close()
        with contextlib.suppress(Exception):
            await self.sink.stop()
        if self._connected_at is not None:
            self.result.duration_s = round(time.monotonic() - self._connected_at, 2)
        self.result.state = final
        self.result.reason = reason
        self._set_state(final, reason)
        assert self._done is not None
        if not self._done.done():
            self._done.set_result(self.result)

