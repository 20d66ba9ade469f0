"""ICE servers: from the profile, from the gateway's ice-servers endpoint, and a STUN budget.

aiortc gathers all candidates inside `setLocalDescription` and aioice waits up to
5 s for STUN/TURN answers. `apply_gather_budget` bounds that wait per peer, so an
unreachable STUN server costs at most the budget, not 5 s of call setup.

The gateway's list is fetched while the signaling socket opens and never holds call
set-up for long (`settle_fetch`); what it returns is read leniently (`parse_servers_lenient`);
`plan` orders TURN URLs for aiortc (which uses only the first STUN and the first TURN URL)
and adds public STUN for PolyAI's own regions when nothing else is known.
Credentials never appear in logs, errors or reprs.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import quote, urlsplit, urlunsplit

from aiortc import RTCIceServer, RTCPeerConnection
from aiortc.rtcicetransport import parse_stun_turn_uri

from .. import protocol, rtc_internals
from ..protocol.urls import is_loopback_host
from . import net
from .signaling import make_ssl_context

STUN_BUDGET_S = 0.5
"""How long gathering may wait for STUN answers (server-reflexive candidates)."""
TURN_BUDGET_S = 2.0
"""How long gathering may wait for a TURN allocation (relay candidates matter more)."""
FETCH_TIMEOUT_S = 1.5
FETCH_GRACE_S = 0.3
"""How long set-up waits for the ice-servers answer once the signaling socket is open.

The fetch starts with the socket, to the same host: by the time the socket is open (DNS,
TCP, TLS and the upgrade done) the fetch has had the same round trips, and what is left is
one HTTP request and answer, a single round trip (under ~150 ms to a PolyAI region from most
places). 0.3 s covers that with margin while adding at most 0.3 s to a call whose fetch hangs;
a later answer is logged and ignored for that call."""
POLYAI_HOST_SUFFIX = ".platform.polyai.app"
PUBLIC_STUN_URL = "stun:stun.l.google.com:19302"
"""What PolyAI's Android and iOS SDKs fall back to when the gateway offers no servers."""
_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


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
        return ", ".join(map(safe_url, self.urls)) + (" (with credentials)" if self.credential else "")

    def to_rtc(self) -> RTCIceServer:
        return RTCIceServer(urls=list(self.urls), username=self.username,
                            credential=self.credential)


class IceConfigError(ValueError):
    pass


def safe_url(url: str) -> str:
    """A stun:/turn: URL fit for a log line: no user part, no query but `transport`, 80 chars."""
    scheme, sep, rest = url.partition(":")
    rest, q, query = rest.partition("?")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    if q and not (query.startswith("transport=") and "&" not in query):
        query = "…"
    return f"{scheme}{sep}{rest}{q}{query}"[:80]


def parse_servers(raw: Any) -> list[IceServer]:
    """Servers from the WebRTC shape `[{"urls": str|[str], "username", "credential"}]`.

    Strict: the first bad entry raises IceConfigError (for configuration a person wrote).
    """
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
            if not u.startswith(_SCHEMES):
                raise IceConfigError(f"iceServers[{i}]: {u[:60]!r} is not a stun:/turn: URL")
        user, cred = item.get("username"), item.get("credential")
        if user is not None and not isinstance(user, str):
            raise IceConfigError(f"iceServers[{i}].username must be text")
        if cred is not None and not isinstance(cred, str):
            raise IceConfigError(f"iceServers[{i}].credential must be text")
        out.append(IceServer(tuple(urls), user, cred))
    return out


def _url_problem(url: Any) -> str | None:
    """Why aiortc could not use this URL, or None."""
    if not isinstance(url, str):
        return f"a URL of type {type(url).__name__}"
    shown = repr(safe_url(url))
    if not url.startswith(_SCHEMES):
        return f"{shown} is not a stun:/turn: URL"
    try:
        parse_stun_turn_uri(url)
    except ValueError as exc:
        return f"{shown} is malformed ({exc})"
    return None


def parse_servers_lenient(raw: Any) -> tuple[list[IceServer], list[str]]:
    """Servers from what a gateway returned, keeping every usable part: (servers, problems).

    Accepts `{"iceServers": [...]}` or a bare list, `urls` or `url`. A bad entry (not an
    object, no usable URL, a username or credential that is not text) is skipped, and so is a
    single bad URL inside a list. Each skip is one line in `problems`, which names the entry
    and the URL but never a username or credential.
    """
    if isinstance(raw, dict):
        if "iceServers" not in raw:
            return [], ["the answer has no iceServers list"]
        raw = raw["iceServers"]
    if not isinstance(raw, list):
        return [], [f"iceServers is a {type(raw).__name__}, not a list"]
    servers: list[IceServer] = []
    problems: list[str] = []
    for i, item in enumerate(raw):
        server = _one_server(f"iceServers[{i}]", item, problems)
        if server is not None:
            servers.append(server)
    return servers, problems


def _one_server(where: str, item: Any, problems: list[str]) -> IceServer | None:
    """One entry of the list, or None (the reason appended to `problems`)."""
    if not isinstance(item, dict):
        problems.append(f"{where} skipped: not an object")
        return None
    urls = item.get("urls", item.get("url"))
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list):
        problems.append(f"{where} skipped: no urls")
        return None
    user, cred = item.get("username"), item.get("credential")
    if not isinstance(user, (str, type(None))) or not isinstance(cred, (str, type(None))):
        problems.append(f"{where} skipped: username and credential must be text")
        return None
    good = []
    for url in urls:
        why = _url_problem(url)
        if why is None and url.startswith("turn") and not (user and cred):
            why = f"{safe_url(url)!r} is a TURN URL without a username and credential"
        if why is not None:
            problems.append(f"{where}: skipped {why}")
        elif url not in good:
            good.append(url)
    if not good:
        problems.append(f"{where} skipped: no usable stun:/turn: URL")
        return None
    return IceServer(tuple(good), user, cred)


def ice_servers_url(signal_url: str) -> str:
    """`GET https://{host}/api/v1/ice-servers` beside the signaling URL (http:// for loopback)."""
    p = urlsplit(signal_url)
    scheme = "https" if p.scheme == "wss" else "http"
    return urlunsplit((scheme, p.netloc, protocol.ICE_SERVERS_PATH, "", ""))


def _fetch_blocking(url: str, token: str, timeout: float,
                    ca_file: str | None) -> tuple[list[IceServer], list[str]]:
    host = urlsplit(url).hostname or ""
    if url.startswith("http:") and not is_loopback_host(host):
        raise IceConfigError("refusing to send a token over plain http")
    ctx = make_ssl_context(ca_file) if url.startswith("https:") else None
    proxy = net.proxy_for(url)
    req = urllib.request.Request(f"{url}?token={quote(token, safe='')}",
                                 headers={"Accept": "application/json",
                                          "User-Agent": net.user_agent()})
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         urllib.request.ProxyHandler({"https": proxy} if proxy else {}))
    with opener.open(req, timeout=timeout) as resp:
        body = resp.read(64 * 1024)
    return parse_servers_lenient(json.loads(body))


async def fetch_gateway_servers(signal_url: str, token: str, *, timeout: float = FETCH_TIMEOUT_S,
                                ca_file: str | None = None) -> tuple[list[IceServer] | None, str]:
    """Best effort: (servers, notes) or (None, why it failed). Neither text holds the token
    or a credential; `notes` lists the entries skipped from the answer ("" when none were)."""
    url = ice_servers_url(signal_url)
    try:
        servers, problems = await asyncio.wait_for(
            asyncio.to_thread(_fetch_blocking, url, token, timeout, ca_file), timeout + 0.5)
        return servers, "; ".join(problems)[:600]
    except asyncio.TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return None, str(getattr(exc.reason, "strerror", None) or exc.reason)[:120]
    except (OSError, ValueError, IceConfigError) as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"


async def settle_fetch(fetch: asyncio.Future, grace: float = FETCH_GRACE_S, *,
                       on_late: Callable[[str], None] = lambda text: None
                       ) -> tuple[list[IceServer] | None, str]:
    """The fetch's (servers, notes) if it is done within `grace` s, else (None, why).

    A fetch still running is left to finish on its own: `on_late` then gets one line saying
    what it brought (it is not used for this call). A fetcher that raised counts as a failure.
    """
    started = time.monotonic()
    done, _ = await asyncio.wait({fetch}, timeout=grace)
    if done:
        return _fetch_outcome(fetch)

    def late(f: asyncio.Future) -> None:
        if f.cancelled():
            return
        servers, why = _fetch_outcome(f)
        after = time.monotonic() - started
        what = f"{len(servers)} server(s)" if servers is not None else f"failed: {why}"
        on_late(f"the gateway's ICE servers came {after:.1f} s after the socket opened "
                f"({what}); ignored for this call")

    fetch.add_done_callback(late)
    return None, f"no answer {grace:g} s after the signaling socket opened"


def _fetch_outcome(fetch: asyncio.Future) -> tuple[list[IceServer] | None, str]:
    exc = fetch.exception()
    if exc is not None:
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"
    return fetch.result()


def choose(profile: Iterable[IceServer], fetched: list[IceServer] | None) -> list[IceServer]:
    """Fetched servers (fresh TURN credentials) first, then the profile's own."""
    out: list[IceServer] = list(fetched or [])
    for s in profile:
        if s not in out:
            out.append(s)
    return out


def turn_rank(url: str) -> int:
    """0 passes the most firewalls: turns: on 443, turn: TCP on 443, other turns:, turn: TCP,
    turn: UDP; 5 for a TURN URL aiortc cannot use (another transport) or a malformed one."""
    try:
        p = parse_stun_turn_uri(url)
    except ValueError:
        return 5
    if p["scheme"] == "turns":
        return (0 if p["port"] == 443 else 2) if p["transport"] == "tcp" else 5
    if p["transport"] == "tcp":
        return 1 if p["port"] == 443 else 3
    return 4 if p["transport"] == "udp" else 5


def order_turn(servers: Iterable[IceServer]) -> list[IceServer]:
    """aiortc takes the first STUN and the first TURN URL of the whole list: put the TURN URL
    most likely to pass a firewall first. Each TURN URL becomes its own entry (with its
    server's credentials); STUN entries keep their order; equal ranks keep theirs."""
    stun: list[IceServer] = []
    turn: list[tuple[int, int, IceServer]] = []
    for s in servers:
        plain = tuple(u for u in s.urls if not u.startswith(("turn:", "turns:")))
        if plain:
            stun.append(IceServer(plain, s.username, s.credential) if plain != s.urls else s)
        for u in s.urls:
            if u.startswith(("turn:", "turns:")):
                turn.append((turn_rank(u), len(turn), IceServer((u,), s.username, s.credential)))
    return stun + [s for _, _, s in sorted(turn, key=lambda t: t[:2])]


def is_polyai_region(signal_url: str) -> bool:
    """A real PolyAI region: wss:// to a host under .platform.polyai.app."""
    try:
        p = urlsplit(signal_url)
        host = (p.hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    return p.scheme == "wss" and host.endswith(POLYAI_HOST_SUFFIX)


def plan(signal_url: str, profile: Iterable[IceServer], fetched: list[IceServer] | None,
         *, fetch_asked: bool) -> tuple[list[IceServer], list[tuple[str, str]]]:
    """The servers for the peer, and (level, text) log lines saying why; no credentials.

    Fetched servers first, then the profile's; TURN URLs ordered (`order_turn`). When the
    gateway was asked but gave nothing and the profile has none, a real PolyAI region gets
    public STUN, as PolyAI's SDKs do; any other host (the local gateway, a custom one) not.
    """
    profile = list(profile)
    notes: list[tuple[str, str]] = []
    servers = order_turn(choose(profile, fetched))
    if not servers and fetch_asked and is_polyai_region(signal_url):
        servers = [IceServer((PUBLIC_STUN_URL,))]
        notes.append(("info", f"no ICE servers from the gateway or the profile: "
                              f"falling back to public STUN {PUBLIC_STUN_URL}"))
    turn = [u for s in servers for u in s.urls if u.startswith(("turn:", "turns:"))]
    if turn:
        others = f" (of {len(turn)} TURN URLs; aiortc uses one)" if len(turn) > 1 else ""
        notes.append(("info", f"TURN: using {safe_url(turn[0])}{others}"))
    for s in servers:
        notes.append(("debug", f"ICE server {s.describe()}"))
    return servers, notes


def apply_gather_budget(pc: RTCPeerConnection, servers: list[IceServer]) -> float:
    """Bound aioice's STUN/TURN wait for every ICE gatherer of `pc`. Returns the wait in force.

    Call after the transceivers exist and before setLocalDescription. When the hook does not
    apply (aiortc or aioice changed; logged by rtc_internals), gathering keeps aioice's own
    wait, which is returned instead of the budget.
    """

    budget = TURN_BUDGET_S if any(s.is_turn for s in servers) else STUN_BUDGET_S
    if not rtc_internals.bound_gather_wait(pc, budget):
        return rtc_internals.AIOICE_GATHER_WAIT_S
    return budget


async def servers_for_call(url: str, profile: Iterable[IceServer], fetch: asyncio.Future | None,
                           log: Callable[[str, str], None], ended: Callable[[], bool]) -> list[IceServer]:
    """The servers for one call: the gateway's list (waited for at most FETCH_GRACE_S once the
    socket is open), the profile's, and the fallback of `plan`; each step logged as (level, text)."""
    fetched = None
    if fetch is not None:
        fetched, why = await settle_fetch(fetch, on_late=lambda text: ended() or log("info", text))
        if fetched is None:
            log("info", f"gateway ICE servers unavailable ({why}); using the profile's")
        else:
            log("info", f"gateway offered {len(fetched)} ICE server(s)")
            if why:
                log("warning", f"skipped in the gateway's ICE servers: {why}")
    servers, notes = plan(url, profile, fetched, fetch_asked=fetch is not None)
    for level, text in notes:
        log(level, text)
    return servers

