"""SignalingClient: the gateway's websocket (connect, send, receive, keepalive, resume).

- `wss://` with certificate checks; `ws://` only to a loopback host.
- A bounded frame size, a connect timeout, websocket pings for keepalive.
- After `resumable` is set (the call has a sessionId), an unexpected drop
  reconnects with backoff (1 s, 2 s, 4 s by default) and calls `on_resumed`,
  so the call continues the same session on the new socket.
- A close the gateway means (1000/1001 a hang-up; protocol, policy and 4xxx codes
  terminal; protocol/closes.py) is never resumed: it goes to `on_closed`. Once we have
  sent `close`, the socket closing is the end of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from .. import protocol
from ..aio import cancel_and_wait
from ..errors import UserFacingError
from ..protocol import Message, ProtocolError, UnknownMessageType, closes, urls
from . import net


class SignalingError(UserFacingError):
    """The socket could not be opened or used. `action` says what to do."""

    def __init__(self, message: str, action: str = "", *, config: bool = False) -> None:
        super().__init__(message, action)
        self.config = config  # the URL or settings are wrong (not a network fault)


def check_url(url: str) -> str:
    """Validate a signaling URL (protocol/urls.py); returns it. Raises SignalingError(config=True)."""
    try:
        return urls.check_url(url)
    except urls.UrlError as exc:
        raise SignalingError(exc.message, exc.action, config=True) from None


def redact_url(url: str) -> str:
    """The URL without query or credentials, safe to log."""
    try:
        p = urlsplit(url)
        netloc = p.hostname or ""
        if p.port:
            netloc = f"{netloc}:{p.port}"
        return f"{p.scheme}://{netloc}{p.path}"
    except ValueError:
        return "<invalid url>"


def make_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate-checking TLS against the operating system's trust store; `ca_file` adds a
    CA (a private or test gateway). Used for wss:// and for the ice-servers fetch.

    `truststore` (as pip uses it) verifies through the OS: Windows' and macOS' own
    certificate stores (so a CA a company installs there is trusted, which python.org's
    Python and a frozen bundle would not see), and OpenSSL's system CA files on Linux.
    Its context honours `load_verify_locations` on all three (truststore >= 0.9).
    """
    import truststore

    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


@dataclass(frozen=True)
class SignalingOptions:
    connect_timeout: float = 10.0
    ping_interval: float = 15.0
    ping_timeout: float = 15.0
    reconnect_delays: Sequence[float] = (1.0, 2.0, 4.0)
    ca_file: str | None = None
    max_pending: int = 64


@dataclass(frozen=True)
class SocketClosed:
    """The gateway closed the socket on purpose: a hang-up, or terminal (never resumed)."""

    kind: closes.CloseKind
    code: int | None
    reason: str

    def describe(self) -> str:
        return closes.describe(self.code, self.reason)


MessageHandler = Callable[[Message], None]
StateHandler = Callable[[str], None]
LogHandler = Callable[[str, str], None]  # (level, text)


class SignalingClient:
    """One logical signaling channel; may span several sockets when resumed."""

    def __init__(self, url: str, options: SignalingOptions | None = None) -> None:
        self.url = check_url(url)
        self.options = options or SignalingOptions()
        self.on_message: MessageHandler = lambda m: None
        self.on_state: StateHandler = lambda s: None
        self.on_log: LogHandler = lambda level, text: None
        self.on_resumed: Callable[[], Awaitable[None]] | None = None
        self.on_lost: Callable[[SignalingError], None] = lambda e: None
        self.on_closed: Callable[[SocketClosed], None] = lambda c: None
        self.resumable = False
        self.reconnects = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._closing = False
        self._pending: list[str] = []
        self._said_close = False  # we sent `close`: a socket closing after it ends the call
        self._ssl = make_ssl_context(self.options.ca_file) if url.startswith("wss:") else None

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self._ws.state is websockets.protocol.State.OPEN

    async def connect(self) -> None:
        self.on_state("connecting")
        self._ws = await self._open()
        self.on_state("open")
        self._reader = asyncio.ensure_future(self._read_loop())

    async def _open(self) -> ClientConnection:
        where = redact_url(self.url)
        try:
            return await asyncio.wait_for(
                connect(self.url, ssl=self._ssl, open_timeout=None, close_timeout=2,
                        max_size=protocol.MAX_MESSAGE_BYTES, max_queue=64,
                        ping_interval=self.options.ping_interval,
                        ping_timeout=self.options.ping_timeout,
                        user_agent_header=net.user_agent(), proxy=net.proxy_for(self.url),
                        compression=None),
                self.options.connect_timeout)
        except asyncio.TimeoutError:
            raise SignalingError(
                f"The gateway at {where} did not answer within "
                f"{self.options.connect_timeout:.0f} s.",
                "Check your network connection and the profile's region or URL.") from None
        except ssl.SSLCertVerificationError as exc:
            raise SignalingError(
                f"The gateway's certificate at {where} could not be verified "
                f"({getattr(exc, 'verify_message', None) or exc}).",
                "Check the URL; for a private gateway, configure its CA certificate.") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise SignalingError(
                f"The gateway at {where} refused the connection (HTTP {status}).",
                "Check the profile's region or URL.") from None
        except InvalidURI:
            raise SignalingError(f"The gateway URL {where} is not valid.",
                                 "Check the profile's region or URL.", config=True) from None
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise SignalingError(
                f"Could not connect to the gateway at {where} ({reason}).",
                "Check your network connection and the profile's region or URL.") from None

    async def send(self, msg: Message) -> None:
        text = protocol.encode(msg)
        if isinstance(msg, protocol.Close):
            self._said_close = True
        ws = self._ws
        if ws is not None:
            try:
                await ws.send(text)
                return
            except ConnectionClosed:
                pass
        if self.resumable and not self._closing and len(self._pending) < self.options.max_pending:
            self._pending.append(text)  # sent after the socket is resumed
            return
        raise SignalingError("The connection to the gateway is closed.", "Call again.")

    async def _read_loop(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for raw in ws:
                    self._dispatch(raw)
            except ConnectionClosed:
                pass
            if self._closing or self._said_close:
                return  # we ended the call: the socket closing is its end, never a reconnect
            code, reason = ws.close_code, ws.close_reason or ""
            kind = closes.classify(code)
            if kind is not closes.CloseKind.DROPPED:
                self.on_log("info", f"the gateway closed the socket ({closes.describe(code, reason)})")
                self.on_state("closed")
                self.on_closed(SocketClosed(kind, code, reason))
                return
            if not self.resumable:
                self._lost("The gateway closed the signaling connection "
                           f"({closes.describe(code, reason)}).")
                return
            if not await self._resume():
                return

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            msg = protocol.parse(raw)
        except UnknownMessageType as exc:
            self.on_log("info", f"ignored a message of unknown type {exc.msg_type!r}")
            return
        except ProtocolError as exc:
            self.on_log("warning", f"ignored a malformed message from the gateway: {exc.reason}")
            return
        if isinstance(msg, protocol.Answer):
            # The gateway holds a session from now on: a drop before the call has applied the
            # answer (it does so asynchronously) must be resumed too, not end the call.
            self.resumable = True
        self.on_message(msg)

    async def _resume(self) -> bool:
        self._ws = None
        for attempt, delay in enumerate(self.options.reconnect_delays, start=1):
            self.on_state("reconnecting")
            self.on_log("warning", f"signaling dropped; reconnecting in {delay:g} s "
                                   f"(try {attempt} of {len(self.options.reconnect_delays)})")
            await asyncio.sleep(delay)
            if self._closing:
                return False
            try:
                ws = await self._open()
            except SignalingError as exc:
                self.on_log("warning", f"reconnect failed: {exc.message}")
                continue
            self._ws = ws
            self.reconnects += 1
            self.on_state("open")
            self.on_log("info", "signaling resumed on a new connection")
            pending, self._pending = self._pending, []
            for text in pending:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(text)
            if self.on_resumed is not None:
                await self.on_resumed()
            return True
        self._lost("The connection to the gateway was lost and could not be restored "
                   f"after {len(self.options.reconnect_delays)} tries.")
        return False

    def _lost(self, message: str) -> None:
        self.on_state("closed")
        self.on_lost(SignalingError(message, "Check your network connection and call again."))

    async def close(self) -> None:
        """Close for good (idempotent). Stops any reconnection."""
        self._closing = True
        reader, self._reader = self._reader, None
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if reader is not None and reader is not asyncio.current_task():
            await cancel_and_wait(reader, quiet=True)
        self.on_state("closed")
