"""A local gateway faithful to the PolyAI WebRTC Gateway spec, for offline use, demos, tests.

One websockets server serves the signaling socket at `protocol.SIGNAL_PATH` and
`GET protocol.ICE_SERVERS_PATH?token=TOKEN` on the same port. Each valid offer
gets a session: an aiortc answerer (no ICE servers: nothing leaves the machine)
and an agent (echo or demo). Sessions are routed by `sessionId`, not by
socket: when a socket drops, its sessions wait `grace_seconds` for any frame
carrying their id on a new socket (with `Faults.no_resume`, they end with it).
Whatever a client sends, the reply is an answer, an `error` frame, or nothing;
the socket stays open and the server lives. `Faults` injects the misbehaviour a
client must survive (misbehaviour.py plays it).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import http
import json
import logging
import uuid
from typing import Any, Iterable
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import protocol
from ..protocol import Answer, Close, ErrorCode, IceCandidate, Offer, ProtocolError
from .agents import AGENT_KINDS, agent_kind_for, think_ms_for
from .faults import Faults
from .misbehaviour import after_answer, impair_media, refuse_offer
from .rawframes import frame_session_id, names_no_session
from .session import BadCandidate, BridgeFailure, Session, candidate_key, open_peer, sdp_candidates

SEND_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
MAX_SESSIONS = 64
MAX_CONNECTIONS = 128
GRACE_SECONDS = 30.0
_ENDED_KEPT = 256
UNKNOWN_SESSION = "Unknown or expired session"

__all__ = ["Faults", "LocalGateway", "Session"]


class LocalGateway:
    """The local gateway. `await start()` returns the signaling URL; `await stop()` ends all.

    tokens: accepted auth tokens; None or empty accepts any non-empty token.
    agent: "echo" or "demo" forces an agent; None chooses by the offer's mode.
    faults: misbehaviour to inject. think_ms: the demo agent's pause before a reply.
    ice_servers: what `GET /api/v1/ice-servers` hands out (the gateway's own peer uses none).
    grace_seconds: how long a session whose socket dropped waits to be re-attached.
    For tests: `sessions` (live, by id), `ended` (id -> reason), `frames_received`, `errors_sent`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tokens: Iterable[str] | None = None,
                 agent: str | None = None, faults: Faults | None = None, think_ms: int = 600,
                 ice_servers: list[dict[str, Any]] | None = None, log: logging.Logger | None = None,
                 *, grace_seconds: float = GRACE_SECONDS, max_sessions: int = MAX_SESSIONS) -> None:
        if agent is not None and agent not in AGENT_KINDS:
            raise ValueError(f"unknown agent {agent!r} (choose from {', '.join(AGENT_KINDS)})")
        self.host = host
        self.port = port
        self._tokens = frozenset(t for t in (tokens or ()) if t)
        self.agent = agent
        self.faults = faults or Faults()
        self.think_ms = think_ms
        self.ice_servers = list(ice_servers or [])
        self.log = log or logging.getLogger("polyphone.localgw")
        self.grace_seconds = grace_seconds
        self.max_sessions = max_sessions
        self.sessions: dict[str, Session] = {}
        self.ended: collections.OrderedDict[str, str] = collections.OrderedDict()  # id -> reason
        self.frames_received = 0
        self.errors_sent = 0
        self.url = ""
        self.http_base = ""
        self._server: Server | None = None
        self._sockets: set[ServerConnection] = set()
        self._pending = 0  # offers being negotiated (count toward max_sessions)
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        # websockets logs request lines (with ?token=) at DEBUG: keep its logger above that.
        self._ws_log = logging.getLogger("polyphone.localgw.websockets")
        if self._ws_log.getEffectiveLevel() < logging.INFO:
            self._ws_log.setLevel(logging.INFO)

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> str:
        if self._server is not None:
            return self.url
        self._server = await serve(
            self._handle, self.host, self.port,
            process_request=self._process_request,
            max_size=protocol.MAX_MESSAGE_BYTES, max_queue=16,
            ping_interval=20, ping_timeout=20, logger=self._ws_log,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"ws://{host}:{self.port}{protocol.SIGNAL_PATH}"
        self.http_base = f"http://{host}:{self.port}"
        self.log.info("local gateway listening on %s (agent: %s, auth: %s)", self.url,
                      self.agent or "by mode", "tokens" if self._tokens else "any token")
        return self.url

    async def stop(self) -> None:
        """Close every session, peer and socket. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._server is not None:
            self._server.close()  # refuses new connections, closes open ones
        await asyncio.gather(*(self.end_session(s, "gateway stopped")
                               for s in list(self.sessions.values())), return_exceptions=True)
        await self._drain_tasks(STOP_TIMEOUT)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                self.log.warning("local gateway: connections did not close in time")
        self.log.info("local gateway stopped")

    async def __aenter__(self) -> "LocalGateway":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _drain_tasks(self, timeout: float) -> None:
        """Let session teardowns in flight finish (they may start more); cancel stragglers."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                for task in list(self._tasks):
                    task.cancel()
                self.log.warning("local gateway: %d tasks cancelled at stop", len(self._tasks))
                return
            await asyncio.wait(set(self._tasks), timeout=left)

    async def pause(self, seconds: float) -> bool:
        """Sleep, waking early when the gateway stops. True when it is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            pass
        return self._stopping.is_set()

    def token_ok(self, token: str | None) -> bool:
        if not token:
            return False
        if not self._tokens:
            return True  # open mode: any non-empty token
        given = token.encode("utf-8", "surrogatepass")
        return any(hmac.compare_digest(given, t.encode("utf-8", "surrogatepass")) for t in self._tokens)

    # --- HTTP: routing and the ice-servers endpoint --------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == protocol.SIGNAL_PATH:
            if len(self._sockets) >= MAX_CONNECTIONS or self._stopping.is_set():
                return conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Busy\n")
            return None
        if path == protocol.ICE_SERVERS_PATH:
            token = parse_qs(query).get("token", [""])[0]
            if self.token_ok(token):
                return self._json(conn, http.HTTPStatus.OK, {"iceServers": self.ice_servers})
            message = "Auth token required" if not token else "Invalid authentication token"
            return self._json(conn, http.HTTPStatus.UNAUTHORIZED,
                              {"error": {"code": ErrorCode.UNAUTHORIZED.value, "message": message}})
        return conn.respond(http.HTTPStatus.NOT_FOUND, "Not found\n")

    @staticmethod
    def _json(conn: ServerConnection, status: http.HTTPStatus, body: Any) -> Response:
        response = conn.respond(status, json.dumps(body))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- the signaling socket ----------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self._sockets.add(ws)
        try:
            async for raw in ws:
                self.frames_received += 1
                try:
                    await self._on_frame(ws, raw)
                except ConnectionClosed:
                    raise
                except Exception:  # a bug here must not take the socket or the server down
                    self.log.exception("local gateway: error handling a frame")
                    await self.send_error(ws, frame_session_id(raw), ErrorCode.HANDLER_ERROR,
                                      "The gateway failed to handle the message")
        except ConnectionClosed:
            pass
        finally:
            self._sockets.discard(ws)
            self._detach(ws)

    async def send(self, ws: ServerConnection | None, frame: protocol.Message | str) -> bool:
        if ws is None:
            return False
        text = frame if isinstance(frame, str) else protocol.encode(frame)
        try:
            await asyncio.wait_for(ws.send(text), SEND_TIMEOUT)
            return True
        except (ConnectionClosed, asyncio.TimeoutError):
            return False
        except Exception:
            self.log.warning("local gateway: send failed", exc_info=True)
            return False

    async def send_error(self, ws: ServerConnection | None, session_id: str, code: ErrorCode | str,
                     message: str) -> None:
        code_text = code.value if isinstance(code, ErrorCode) else code
        self.errors_sent += 1
        self.log.info("-> error %s (session %r): %s", code_text, session_id, message)
        await self.send(ws, protocol.Error(session_id, code_text, message))

    async def _on_frame(self, ws: ServerConnection, raw: str | bytes) -> None:
        try:
            msg = protocol.parse(raw)
        except ProtocolError as exc:
            await self.send_error(ws, frame_session_id(raw), exc.code, exc.reason)
            return
        if isinstance(msg, Close) and not msg.session_id and names_no_session(raw):
            return await self.send_error(ws, "", ErrorCode.INVALID_MESSAGE, "close: missing 'sessionId'")
        if isinstance(msg, Offer):
            await self._on_offer(ws, msg)
        elif isinstance(msg, IceCandidate):
            await self._on_candidate(ws, msg)
        elif isinstance(msg, Close):
            await self._on_close(ws, msg)
        else:  # answer, error, pong: only a gateway sends those
            await self.send_error(ws, msg.session_id, ErrorCode.INVALID_MESSAGE,
                              f"a client may not send {msg.type!r} messages")

    def _route(self, ws: ServerConnection, session_id: str) -> Session | None:
        """The live session with this id, re-attached to `ws` if it came on another socket
        (with `Faults.no_resume`, a session is only reachable from its own socket)."""
        session = self.sessions.get(session_id) if session_id else None
        if session is None or session.closed:
            return None
        if session.ws is not ws:
            if self.faults.no_resume:
                return None
            if session.grace is not None:
                session.grace.cancel()
                session.grace = None
            session.ws = ws
            session.reattachments += 1
            if session.state == "detached":
                session.state = "active"
            self.log.info("session %s re-attached to a new socket", session_id)
        return session

    def _detach(self, ws: ServerConnection) -> None:
        """The socket is gone: its sessions wait for a new one (or the gateway stops)."""
        if self._stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        for session in self.sessions.values():
            if session.ws is ws and not session.closed:
                session.ws = None
                if self.faults.no_resume:  # bound to its socket: it ends with it, at once
                    self.spawn(self.end_session(session, "signaling lost"))
                    continue
                session.state = "detached"
                session.grace = loop.call_later(self.grace_seconds, self._grace_expired, session)
                self.log.info("session %s detached; %.0f s to re-attach", session.id,
                              self.grace_seconds)

    def _grace_expired(self, session: Session) -> None:
        session.grace = None
        if session.ws is None and not session.closed:
            self.spawn(self.end_session(session, "signaling lost"))

    # --- messages -----------------------------------------------------------------

    async def _on_offer(self, ws: ServerConnection, offer: Offer) -> None:
        sid_in = offer.session_id
        if not offer.auth_token:
            return await self.send_error(ws, sid_in, ErrorCode.UNAUTHORIZED, "Auth token required")
        if not self.token_ok(offer.auth_token):
            return await self.send_error(ws, sid_in, ErrorCode.UNAUTHORIZED, "Invalid authentication token")
        if self.faults.no_resume and sid_in and self._route(ws, sid_in) is None:
            return await self.send_error(ws, sid_in, ErrorCode.HANDLER_ERROR, UNKNOWN_SESSION)
        if await refuse_offer(self, ws, sid_in):  # error_shape, error_code, never_answer
            return
        if len(self.sessions) + self._pending >= self.max_sessions:
            return await self.send_error(ws, sid_in, ErrorCode.AGENT_FAILURE,
                                     f"The gateway is at capacity ({self.max_sessions} sessions)")
        sid = str(uuid.uuid4())
        kind = agent_kind_for(offer.mode, self.agent)
        self._pending += 1
        try:
            override = offer.agent_version_override
            think = think_ms_for(offer.variant_id, override.artifact_version if override else None,
                                 self.think_ms)
            peer, agent, sinks = await open_peer(sid, offer.sdp, kind, think_ms=think)
        except BridgeFailure as exc:
            return await self.send_error(ws, sid_in, ErrorCode.MEDIA_BRIDGE_FAILURE, str(exc))
        finally:
            self._pending -= 1
        impair_media(self, sid, peer)
        session = Session(
            id=sid, peer=peer, agent=agent, agent_kind=kind, mode=offer.mode, ws=ws, sinks=sinks,
            offer_candidates=frozenset(candidate_key(c.candidate) for c in sdp_candidates(offer.sdp)),
            local_candidates=sdp_candidates(peer.localDescription.sdp),
        )
        self.sessions[sid] = session
        peer.on("connectionstatechange", lambda: self._on_peer_state(session))
        if self._stopping.is_set():
            return await self.end_session(session, "gateway stopped")
        self.log.info("session %s: %s agent (mode %s)", sid, kind, offer.mode or "default")
        await self._answer(session)

    async def _answer(self, session: Session) -> None:
        sid, faults = session.id, self.faults
        candidates = [IceCandidate(sid, c) for c in session.local_candidates]
        if faults.candidates_before_answer:
            for frame in candidates:
                await self.send(session.ws, frame)
        if faults.answer_delay > 0 and await self.pause(faults.answer_delay):
            return
        if session.closed:
            return
        await self.send(session.ws, Answer(sid, session.peer.localDescription.sdp))
        if not faults.candidates_before_answer:
            for frame in candidates:
                await self.send(session.ws, frame)
        session.state = "active" if session.ws is not None else "detached"
        await after_answer(self, session)  # the misbehaviour Faults asks for

    async def _on_candidate(self, ws: ServerConnection, msg: IceCandidate) -> None:
        session = self._route(ws, msg.session_id)
        if session is None:
            return await self.send_error(ws, msg.session_id, ErrorCode.HANDLER_ERROR, UNKNOWN_SESSION)
        try:
            await session.add_remote_candidate(msg.candidate)
        except BadCandidate as exc:
            await self.send_error(ws, msg.session_id, ErrorCode.INVALID_ARGUMENT, str(exc))

    async def _on_close(self, ws: ServerConnection, msg: Close) -> None:
        session = self._route(ws, msg.session_id)
        if session is None:
            return await self.send_error(ws, msg.session_id, ErrorCode.HANDLER_ERROR, UNKNOWN_SESSION)
        await self.end_session(session, "closed by the client")

    # --- session ends -----------------------------------------------------------------

    def _on_peer_state(self, session: Session) -> None:
        state = session.peer.connectionState
        self.log.debug("session %s: peer %s", session.id, state)
        if state in ("failed", "closed") and not session.closed:
            self.spawn(self.end_session(session, f"peer connection {state}"))

    async def end_session(self, session: Session, reason: str) -> None:
        if session.closed:
            return
        session.state = "closed"
        session.close_reason = reason
        self.sessions.pop(session.id, None)
        self.ended[session.id] = reason
        while len(self.ended) > _ENDED_KEPT:
            self.ended.popitem(last=False)
        self.log.info("session %s ended: %s", session.id, reason)
        # The teardown runs in a task of the gateway's, so it completes (and stop() waits
        # for it) even when the caller is a session task that the teardown cancels.
        await asyncio.shield(self.spawn(session.close()))
