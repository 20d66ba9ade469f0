"""ICE servers: from the profile, from the gateway's ice-servers endpoint, and a STUN budget.

aiortc gathers all candidates inside `setLocalDescription` and aioice waits up to
5 s for STUN/TURN answers. `apply_gather_budget` bounds that wait per peer, so an
unreachable STUN server costs at most the budget, not 5 s of call setup.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote, urlsplit, urlunsplit

from aiortc import RTCIceServer, RTCPeerConnection

from .. import protocol
from .signaling import is_loopback_host

STUN_BUDGET_S = 0.5
"""How long gathering may wait for STUN answers (server-reflexive candidates)."""
TURN_BUDGET_S = 2.0
"""How long gathering may wait for a TURN allocation (relay candidates matter more)."""
FETCH_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    @property
    def is_turn(self) -> bool:
        return any(u.startswith(("turn:", "turns:")) for u in self.urls)

    def describe(self) -> str:
        """Safe to log: URLs only, never the credential."""
        return ", ".join(self.urls) + (" (with credentials)" if self.credential else "")

    def to_rtc(self) -> RTCIceServer:
        return RTCIceServer(urls=list(self.urls), username=self.username,
                            credential=self.credential)


class IceConfigError(ValueError):
    pass


def parse_servers(raw: Any) -> list[IceServer]:
    """Servers from the WebRTC shape `[{"urls": str|[str], "username", "credential"}]`."""
    if not isinstance(raw, list):
        raise IceConfigError("iceServers must be a list")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise IceConfigError(f"iceServers[{i}] must be an object")
        urls = item.get("urls", item.get("url"))
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise IceConfigError(f"iceServers[{i}].urls must be a URL or a list of URLs")
        for u in urls:
            if not u.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise IceConfigError(f"iceServers[{i}]: {u[:60]!r} is not a stun:/turn: URL")
        user, cred = item.get("username"), item.get("credential")
        if user is not None and not isinstance(user, str):
            raise IceConfigError(f"iceServers[{i}].username must be text")
        if cred is not None and not isinstance(cred, str):
            raise IceConfigError(f"iceServers[{i}].credential must be text")
        out.append(IceServer(tuple(urls), user, cred))
    return out


def ice_servers_url(signal_url: str) -> str:
    """`GET https://{host}/api/v1/ice-servers` beside the signaling URL (http:// for loopback)."""
    p = urlsplit(signal_url)
    scheme = "https" if p.scheme == "wss" else "http"
    return urlunsplit((scheme, p.netloc, protocol.ICE_SERVERS_PATH, "", ""))


def _fetch_blocking(url: str, token: str, timeout: float, ca_file: str | None) -> list[IceServer]:
    host = urlsplit(url).hostname or ""
    if url.startswith("http:") and not is_loopback_host(host):
        raise IceConfigError("refusing to send a token over plain http")
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context()
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
    req = urllib.request.Request(f"{url}?token={quote(token, safe='')}",
                                 headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as resp:
        body = resp.read(64 * 1024)
    data = json.loads(body)
    if not isinstance(data, dict):
        raise IceConfigError("ice-servers answer is not an object")
    return parse_servers(data.get("iceServers", []))


async def fetch_gateway_servers(signal_url: str, token: str, *, timeout: float = FETCH_TIMEOUT_S,
                                ca_file: str | None = None) -> tuple[list[IceServer] | None, str]:
    """Best effort: (servers, "") or (None, why it failed — without the token)."""
    url = ice_servers_url(signal_url)
    try:
        servers = await asyncio.wait_for(
            asyncio.to_thread(_fetch_blocking, url, token, timeout, ca_file), timeout + 0.5)
        return servers, ""
    except asyncio.TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return None, str(getattr(exc.reason, "strerror", None) or exc.reason)[:120]
    except (OSError, ValueError, IceConfigError) as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"


def choose(profile: Iterable[IceServer], fetched: list[IceServer] | None) -> list[IceServer]:
    """Fetched servers (fresh TURN credentials) first, then the profile's own."""
    out: list[IceServer] = list(fetched or [])
    for s in profile:
        if s not in out:
            out.append(s)
    return out


def apply_gather_budget(pc: RTCPeerConnection, servers: list[IceServer]) -> float:
    """Bound aioice's STUN/TURN wait for every ICE gatherer of `pc`. Returns the budget.

    Call after the transceivers exist and before setLocalDescription.
    """
    budget = TURN_BUDGET_S if any(s.is_turn for s in servers) else STUN_BUDGET_S
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.sender.transport.transport.iceGatherer
        conn = gatherer._connection  # aioice.Connection (see FIELD-NOTES "Where the hooks are")
        original = conn.get_component_candidates
        if not isinstance(original, functools.partial):
            conn.get_component_candidates = functools.partial(original, timeout=budget)
    return budget
