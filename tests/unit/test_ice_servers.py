"""ICE servers from a gateway: lenient parsing, TURN order, the public STUN fallback, the
bounded wait for the fetch; and the network policy (User-Agent, proxies). No sockets."""

from __future__ import annotations

import asyncio
import platform
import re
import time

import aiortc
import pytest
from aiortc.rtcicetransport import connection_kwargs

import polyphone
from helpers.waits import until
from polyphone import protocol
from polyphone.audio.files import NullSink, SilenceSource
from polyphone.engine import ice, net
from polyphone.engine.call import Call
from polyphone.engine.events import LogLine
from polyphone.engine.ice import IceServer
from polyphone.engine.request import CallRequest

SECRET = "cred-s3cret-value"
REGION = "wss://webrtc-gateway.us-1.platform.polyai.app/api/v1/webrtc/signal"


# --- lenient parsing ---------------------------------------------------------------------


def test_lenient_parsing_keeps_the_good_and_lists_the_bad_without_credentials() -> None:
    servers, problems = ice.parse_servers_lenient({"iceServers": [
        {"urls": "stun:stun.example.com:3478"},
        "not an object",
        7,
        {"urls": 5},
        {"urls": []},
        {"urls": ["http://example.com", "stun:ok.example.com:19302", 9, "stun:ok.example.com:19302"]},
        {"url": "turn:t.example.com:3478", "username": "u", "credential": SECRET},
        {"urls": "turn:bad.example.com", "username": 5, "credential": SECRET},
        {"urls": "turn:nocred.example.com"},
        {"urls": ["stun:x.example.com?transport=udp", "turn:y.example.com:3478?transport=tcp"],
         "username": "u2", "credential": SECRET + "2"},
    ]})
    assert servers == [
        IceServer(("stun:stun.example.com:3478",)),
        IceServer(("stun:ok.example.com:19302",)),
        IceServer(("turn:t.example.com:3478",), "u", SECRET),
        IceServer(("turn:y.example.com:3478?transport=tcp",), "u2", SECRET + "2"),
    ]
    text = "\n".join(problems)
    assert SECRET not in text and "u2" not in text
    for words in ("iceServers[1] skipped: not an object", "iceServers[2] skipped: not an object",
                  "iceServers[3] skipped: no urls", "iceServers[4] skipped: no usable",
                  "iceServers[5]: skipped 'http://example.com' is not a stun:/turn: URL",
                  "iceServers[5]: skipped a URL of type int",
                  "iceServers[7] skipped: username and credential must be text",
                  "'turn:nocred.example.com' is a TURN URL without a username and credential",
                  "iceServers[9]: skipped 'stun:x.example.com?transport=udp' is malformed"):
        assert words in text, (words, problems)
    assert len(problems) == 10


@pytest.mark.parametrize("raw, servers, words", [
    ([{"urls": "stun:a:1"}], [IceServer(("stun:a:1",))], None),                 # a bare list
    ({"iceServers": []}, [], None),
    ({"servers": []}, [], "no iceServers list"),
    ({"iceServers": {"urls": "stun:a:1"}}, [], "not a list"),
    ("stun:a:1", [], "not a list"),
    (None, [], "not a list"),
])
def test_lenient_parsing_accepts_both_shapes(raw, servers, words) -> None:
    got, problems = ice.parse_servers_lenient(raw)
    assert got == servers
    assert (words is None and problems == []) or any(words in p for p in problems)


def test_strict_parsing_still_raises_for_configuration() -> None:
    with pytest.raises(ice.IceConfigError, match="not a stun:/turn: URL"):
        ice.parse_servers([{"urls": ["stun:a:1", "http://x"]}])


def test_urls_in_logs_lose_user_parts_and_odd_queries() -> None:
    assert ice.safe_url("turn:user:pw@host:3478?transport=tcp") == "turn:***@host:3478?transport=tcp"
    assert ice.safe_url("turns:host:443?token=abc") == "turns:host:443?…"
    s = IceServer(("turn:u:p@h:1",), "u", SECRET)
    assert SECRET not in repr(s) and SECRET not in s.describe() and ":p@" not in s.describe()


# --- TURN order -----------------------------------------------------------------------------


def test_turn_urls_are_ordered_for_firewalls_and_aiortc_takes_the_best() -> None:
    servers = [
        IceServer(("stun:s1:3478", "turn:udp1:3478"), "a", "pa"),
        IceServer(("turn:tcp:3478?transport=tcp", "turns:tls:5349"), "b", "pb"),
        IceServer(("turn:tcp443:443?transport=tcp",), "c", "pc"),
        IceServer(("turns:tls443:443",), "d", "pd"),
        IceServer(("turn:udp2:3478?transport=udp", "stun:s2:3478"), "e", "pe"),
    ]
    ordered = ice.order_turn(servers)
    assert [s.urls for s in ordered] == [
        ("stun:s1:3478",), ("stun:s2:3478",),
        ("turns:tls443:443",), ("turn:tcp443:443?transport=tcp",), ("turns:tls:5349",),
        ("turn:tcp:3478?transport=tcp",), ("turn:udp1:3478",), ("turn:udp2:3478?transport=udp",)]
    assert [(s.username, s.credential) for s in ordered[2:]] == [
        ("d", "pd"), ("c", "pc"), ("b", "pb"), ("b", "pb"), ("a", "pa"), ("e", "pe")]
    kwargs = connection_kwargs([s.to_rtc() for s in ordered])
    assert kwargs["stun_server"] == ("s1", 3478)
    assert kwargs["turn_server"] == ("tls443", 443) and kwargs["turn_ssl"] is True
    assert kwargs["turn_username"] == "d"


@pytest.mark.parametrize("url, rank", [
    ("turns:h:443", 0), ("turns:h:443?transport=tcp", 0), ("turn:h:443?transport=tcp", 1),
    ("turns:h", 2), ("turn:h:3478?transport=tcp", 3), ("turn:h", 4), ("turn:h:443", 4),
    ("turn:h?transport=tls", 5), ("turns:h:443?transport=udp", 5),
])
def test_turn_rank(url: str, rank: int) -> None:
    assert ice.turn_rank(url) == rank


# --- plan: fallback and log lines ------------------------------------------------------------


@pytest.mark.parametrize("url, fallback", [
    (REGION, True),
    ("wss://webrtc-gateway.euw-1.platform.polyai.app/api/v1/webrtc/signal", True),
    ("wss://WEBRTC-GATEWAY.UK-1.PLATFORM.POLYAI.APP/api/v1/webrtc/signal", True),
    ("ws://127.0.0.1:8765/api/v1/webrtc/signal", False),
    ("ws://localhost:8765/api/v1/webrtc/signal", False),
    ("wss://127.0.0.1:8443/api/v1/webrtc/signal", False),
    ("wss://gateway.example.com/api/v1/webrtc/signal", False),
    ("wss://platform.polyai.app.example.com/x", False),
    ("wss://evilplatform.polyai.app/x", False),
])
def test_public_stun_only_for_real_polyai_regions(url: str, fallback: bool) -> None:
    for fetched in (None, []):
        servers, notes = ice.plan(url, [], fetched, fetch_asked=True)
        assert servers == ([IceServer((ice.PUBLIC_STUN_URL,))] if fallback else [])
        assert any("falling back to public STUN" in t for _, t in notes) is fallback


def test_no_fallback_when_the_profile_has_servers_or_the_gateway_was_not_asked() -> None:
    own = IceServer(("stun:own.example.com:3478",))
    assert ice.plan(REGION, [own], None, fetch_asked=True)[0] == [own]
    assert ice.plan(REGION, [], None, fetch_asked=False)[0] == []
    fetched = [IceServer(("turn:t:3478",), "u", SECRET)]
    assert ice.plan(REGION, [], fetched, fetch_asked=True)[0] == fetched


def test_plan_logs_the_chosen_turn_url_and_never_a_credential() -> None:
    fetched = [IceServer(("turn:udp:3478", "turns:tls:443"), "user", SECRET),
               IceServer(("stun:s:3478",))]
    servers, notes = ice.plan(REGION, [IceServer(("turn:own:3478?transport=tcp",), "me", SECRET)],
                              fetched, fetch_asked=True)
    assert servers[0].urls == ("stun:s:3478",) and servers[1].urls == ("turns:tls:443",)
    assert ("info", "TURN: using turns:tls:443 (of 3 TURN URLs; aiortc uses one)") in notes
    assert not any(SECRET in t for _, t in notes)


# --- the bounded wait for the fetch ------------------------------------------------------------


async def test_settle_returns_a_fetch_that_is_done_in_time() -> None:
    async def fetch():
        await asyncio.sleep(0.01)
        return [IceServer(("stun:a:1",))], ""
    assert await ice.settle_fetch(asyncio.ensure_future(fetch()), 1.0) == ([IceServer(("stun:a:1",))], "")


async def test_settle_does_not_wait_for_a_slow_fetch_and_reports_it_late() -> None:
    late: list[str] = []

    async def slow():
        await asyncio.sleep(0.4)
        return [IceServer(("turn:t:1",), "u", SECRET)], ""
    task = asyncio.ensure_future(slow())
    t0 = time.monotonic()
    servers, why = await ice.settle_fetch(task, 0.05, on_late=late.append)
    assert servers is None and "0.05 s after the signaling socket opened" in why
    assert time.monotonic() - t0 < 0.3
    await task
    await asyncio.sleep(0)
    assert len(late) == 1 and "1 server(s)" in late[0] and "ignored for this call" in late[0]
    assert SECRET not in late[0]


async def test_settle_treats_a_fetcher_that_raised_as_a_failure() -> None:
    async def broken():
        raise RuntimeError("boom")
    servers, why = await ice.settle_fetch(asyncio.ensure_future(broken()), 0.5)
    assert servers is None and why == "RuntimeError: boom"


class _Signaling:
    def __init__(self, url: str) -> None:
        self.on_message = self.on_state = self.on_log = self.on_lost = lambda *a: None
        self.on_resumed = None
        self.resumable, self.reconnects = False, 0
        self.offer_at: float | None = None

    async def connect(self) -> None:
        await asyncio.sleep(0.05)

    async def send(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Offer):
            self.offer_at = time.monotonic()

    async def close(self) -> None:
        pass


class _Peer:
    def __init__(self, servers, source) -> None:
        self.servers = servers
        self.on_state = lambda c, s: None
        self.on_track = lambda t: None
        self.gather_budget = 0.0

    async def create_offer(self) -> str:
        return "v=0 fake"

    def local_candidates(self):
        return []

    async def close(self) -> None:
        pass


async def test_a_hanging_fetch_does_not_hold_call_setup_and_a_real_region_gets_public_stun() -> None:
    """Fake ports only: the region URL is never contacted."""
    made: dict = {}
    events: list = []

    async def hanging_fetch(request):
        await asyncio.sleep(1.0)
        return [IceServer(("turn:late:3478",), "u", SECRET)], ""

    def sig(url):
        made["sig"] = _Signaling(url)
        return made["sig"]

    def peer(servers, source):
        made["peer"] = _Peer(servers, source)
        return made["peer"]

    call = Call(CallRequest(url=REGION, token="tok-unit-1"), SilenceSource(), NullSink(), events.append,
                signaling_factory=sig, peer_factory=peer, ice_fetcher=hanging_fetch)
    t0 = time.monotonic()
    runner = asyncio.ensure_future(call.run())
    await until(lambda: "sig" in made and made["sig"].offer_at is not None, 2.0, 0.01, "the offer")
    assert made["sig"].offer_at - t0 < 0.05 + ice.FETCH_GRACE_S + 0.5  # not the fetch's 1 s
    assert made["peer"].servers == [IceServer((ice.PUBLIC_STUN_URL,))]
    await asyncio.sleep(1.1)  # the fetch ends while the call is still up: logged, not used
    await call.hangup()
    await runner
    logs = [e.text for e in events if isinstance(e, LogLine)]
    assert any("falling back to public STUN" in t for t in logs), logs
    assert any("ignored for this call" in t for t in logs), logs
    assert not any(SECRET in t for t in logs)


# --- User-Agent and proxies ------------------------------------------------------------------


def test_user_agent_names_app_os_python_and_aiortc() -> None:
    ua = net.user_agent()
    m = re.fullmatch(r"Polyphone/(\S+) \((.+); Python (\d+\.\d+\.\d+\S*); aiortc (\S+)\)", ua)
    assert m, ua
    assert m.group(1) == polyphone.__version__
    assert m.group(3) == platform.python_version() and m.group(4) == aiortc.__version__
    assert platform.system() in m.group(2) or "macOS" in m.group(2)
    assert ua.isascii() and "\n" not in ua


@pytest.fixture
def clean_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "wss_proxy", "ws_proxy",
                 "socks_proxy", "ftp_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("url", ["wss://gw.example.com/api/v1/webrtc/signal",
                                 "https://gw.example.com/api/v1/ice-servers", REGION])
def test_the_https_proxy_is_used_for_remote_hosts(clean_proxy_env, url) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "http://user:pw@proxy.internal:3128")
    assert net.proxy_for(url) == "http://user:pw@proxy.internal:3128"
    clean_proxy_env.setenv("https_proxy", "proxy2.internal:8080")  # lower case wins; no scheme
    assert net.proxy_for(url) == "http://proxy2.internal:8080"


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8765/api/v1/webrtc/signal", "http://127.0.0.1:1/x",
                                 "wss://127.0.0.2/x", "ws://localhost:1/x", "ws://[::1]:1/x",
                                 "wss://LOCALHOST/x"])
def test_loopback_is_never_proxied(clean_proxy_env, url) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    clean_proxy_env.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    clean_proxy_env.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert net.proxy_for(url) is None


def test_no_proxy_and_unsupported_proxies(clean_proxy_env) -> None:
    url = "wss://webrtc-gateway.uk-1.platform.polyai.app/api/v1/webrtc/signal"
    assert net.proxy_for(url) is None  # nothing configured
    clean_proxy_env.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    clean_proxy_env.setenv("WSS_PROXY", "http://proxy.internal:3128")
    assert net.proxy_for(url) is None  # only the HTTPS proxy is read
    clean_proxy_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    for no_proxy, bypassed in (("polyai.app", True), (".platform.polyai.app", True), ("*", True),
                               ("example.com,other.org", False),
                               ("webrtc-gateway.uk-1.platform.polyai.app", True)):
        clean_proxy_env.setenv("NO_PROXY", no_proxy)
        assert (net.proxy_for(url) is None) is bypassed, no_proxy
    clean_proxy_env.delenv("NO_PROXY")
    for unsupported in ("socks5://proxy.internal:1080", "https://proxy.internal:443"):
        clean_proxy_env.setenv("HTTPS_PROXY", unsupported)
        assert net.proxy_for(url) is None
    assert net.proxy_for("not a url:99999") is None
