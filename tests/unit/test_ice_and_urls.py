"""ICE server configuration, the gather budget, and which signaling URLs are allowed."""

from __future__ import annotations

import functools

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from polyphone.engine import ice
from polyphone.engine.ice import IceConfigError, IceServer, parse_servers
from polyphone.engine.signaling import SignalingError, check_url, redact_url
from polyphone.protocol.urls import is_loopback_host


def test_parse_servers_accepts_the_webrtc_shapes() -> None:
    servers = parse_servers([
        {"urls": "stun:stun.example.com:3478"},
        {"urls": ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
         "username": "u", "credential": "c-secret"},
    ])
    assert servers[0] == IceServer(("stun:stun.example.com:3478",))
    assert servers[1].is_turn and not servers[0].is_turn
    assert "c-secret" not in repr(servers[1]) and "c-secret" not in servers[1].describe()
    rtc = servers[1].to_rtc()
    assert rtc.credential == "c-secret" and rtc.username == "u"


@pytest.mark.parametrize("raw, words", [
    ({"urls": "stun:x"}, "must be a list"),
    ([1], "must be an object"),
    ([{"urls": []}], "urls"),
    ([{"urls": "http://x"}], "not a stun:/turn: URL"),
    ([{"urls": "turn:x", "credential": 5}], "credential must be text"),
])
def test_parse_servers_rejects_bad_input_with_a_reason(raw, words) -> None:
    with pytest.raises(IceConfigError, match=words):
        parse_servers(raw)


def test_fetched_servers_come_first_without_duplicates() -> None:
    a, b = IceServer(("stun:a",)), IceServer(("turn:b",), "u", "p")
    assert ice.choose([a], [b, a]) == [b, a]
    assert ice.choose([a], None) == [a]


def test_ice_servers_url_sits_beside_the_signaling_url() -> None:
    assert ice.ice_servers_url("wss://gw.example.com/api/v1/webrtc/signal") == \
        "https://gw.example.com/api/v1/ice-servers"
    assert ice.ice_servers_url("ws://127.0.0.1:8765/api/v1/webrtc/signal") == \
        "http://127.0.0.1:8765/api/v1/ice-servers"


async def test_gather_budget_bounds_aioice_per_peer() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        assert ice.apply_gather_budget(pc, [IceServer(("stun:x",))]) == ice.STUN_BUDGET_S
        conn = pc.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
        assert isinstance(conn.get_component_candidates, functools.partial)
        assert conn.get_component_candidates.keywords == {"timeout": ice.STUN_BUDGET_S}
        # applying twice does not stack partials
        ice.apply_gather_budget(pc, [])
        assert not isinstance(conn.get_component_candidates.func, functools.partial)
    finally:
        await pc.close()
    assert ice.STUN_BUDGET_S < 1.0 < ice.TURN_BUDGET_S


async def test_fetch_failure_is_reported_without_the_token() -> None:
    servers, why = await ice.fetch_gateway_servers(
        "ws://127.0.0.1:9/api/v1/webrtc/signal", "tok-should-not-appear", timeout=0.5)
    assert servers is None and why
    assert "tok-should-not-appear" not in why


@pytest.mark.parametrize("url", [
    "wss://webrtc-gateway.us-1.platform.polyai.app/api/v1/webrtc/signal",
    "ws://127.0.0.1:8765/api/v1/webrtc/signal",
    "ws://localhost:1/x",
    "ws://[::1]:1/x",
])
def test_allowed_urls(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("url, words", [
    ("ws://gateway.example.com/x", "unencrypted"),
    ("ws://10.0.0.5:80/x", "unencrypted"),
    ("http://127.0.0.1/x", "must start with wss://"),
    ("wss://", "must start with wss://"),
    ("wss://user:pw@host/x", "credentials"),
    ("wss://host/x?token=abc", "credentials"),
    ("wss://host:99999/x", "not valid"),
])
def test_refused_urls(url: str, words: str) -> None:
    with pytest.raises(SignalingError, match=words) as info:
        check_url(url)
    assert info.value.config


def test_loopback_detection_and_redaction() -> None:
    assert is_loopback_host("127.0.0.2") and is_loopback_host("[::1]")
    assert not is_loopback_host("192.0.2.1") and not is_loopback_host("example.com")
    assert redact_url("wss://u:p@h:5/p?token=x") == "wss://h:5/p"
