"""The one request builder every front end uses (services/requests.py): profile, URL, token
order, the embedded gateway, overrides, and what it registers with the redactor."""

from __future__ import annotations

import asyncio

import pytest

from helpers.stores import LockedStore
from polyphone import config, protocol
from polyphone.engine.request import Timeouts
from polyphone.secrets import MemoryStore, token_key, turn_key
from polyphone.services.errors import EDIT_TOKEN, ErrorKind, PrepError
from polyphone.services.local_gateway import EmbeddedGateway
from polyphone.services.redact import Redactor
from polyphone.services.requests import RequestBuilder, Target
from polyphone.services.tokens import TokenVault

REMOTE = config.Profile(name="Bookings", region=config.CUSTOM, url="wss://gw.example.com/api/v1/webrtc/signal",
                        variant_id="v-main", variants=[config.Variant("Fast", "v-fast")],
                        ice_servers=[config.IceServerEntry(["turn:turn.example.com:3478"], "alice")])


class FakeGateway:
    started = 0

    def __init__(self, **kw) -> None:
        self.kw, self.url = kw, "ws://127.0.0.1:1/api/v1/webrtc/signal"

    async def start(self) -> str:
        FakeGateway.started += 1
        return self.url

    async def stop(self) -> None:
        pass


def builder(tmp_path, keyring=None, **gw) -> RequestBuilder:
    store = config.ProfileStore(tmp_path / "profiles.toml")
    store.save([*config.builtin_profiles(), REMOTE])
    return RequestBuilder(store, TokenVault(keyring if keyring is not None else MemoryStore()),
                          EmbeddedGateway(FakeGateway, **gw), Redactor())


def build(b: RequestBuilder, target: Target):
    return asyncio.run(b.build(target))


def test_a_profile_reads_its_token_and_turn_credential_and_hides_both(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("POLYPHONE_TOKEN", raising=False)
    keyring = MemoryStore()
    keyring.set(token_key("Bookings"), "tok-bookings-123")
    keyring.set(turn_key("Bookings", "turn:turn.example.com:3478"), "turn-secret-456")
    b = builder(tmp_path, keyring)
    r = build(b, Target("Bookings", variant_name="Fast", timeouts=Timeouts(answer=3.0)))
    assert (r.url, r.token, r.variant_id) == (REMOTE.url, "tok-bookings-123", "v-fast")
    assert r.timeouts.answer == 3.0
    assert r.ice_servers[0].credential == "turn-secret-456"
    assert b.redact("tok-bookings-123 turn-secret-456") == "[hidden] [hidden]"


def test_the_command_line_prefers_polyphone_token_the_window_the_keyring(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POLYPHONE_TOKEN", "tok-from-env-789")
    keyring = MemoryStore()
    keyring.set(token_key("Bookings"), "tok-bookings-123")
    b = builder(tmp_path, keyring)
    assert build(b, Target("Bookings")).token == "tok-bookings-123"
    assert build(b, Target("Bookings", prefer_environment=True)).token == "tok-from-env-789"
    assert build(b, Target(url="wss://other.example.com/x")).token == "tok-from-env-789"


def test_no_token_and_a_locked_keyring_are_explained(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("POLYPHONE_TOKEN", raising=False)
    with pytest.raises(PrepError) as info:
        build(builder(tmp_path), Target("Bookings"))
    assert info.value.error.kind is ErrorKind.CONFIG and info.value.error.hint == EDIT_TOKEN
    with pytest.raises(PrepError) as info:
        build(builder(tmp_path), Target(url="wss://other.example.com/x"))
    assert "POLYPHONE_TOKEN" in info.value.error.message

    with pytest.raises(PrepError) as info:
        build(builder(tmp_path, LockedStore()), Target("Bookings"))
    assert info.value.error.kind is ErrorKind.KEYRING and "locked" in info.value.error.message


def test_the_demo_profile_and_no_target_start_the_embedded_gateway_once(tmp_path) -> None:
    FakeGateway.started = 0
    b = builder(tmp_path, agent="echo")

    async def both():
        return await b.build(Target(config.LOCAL_PROFILE)), await b.build(Target(mode="echo"))
    demo, bare = asyncio.run(both())
    assert FakeGateway.started == 1 and b.gateway._gateway.kw["agent"] == "echo"
    for r in (demo, bare):
        assert r.url.startswith("ws://127.0.0.1") and r.token == b.gateway.token and not r.fetch_ice_servers
    assert (demo.mode, bare.mode) == ("end-to-end", "echo")
    assert b.redact(b.gateway.token) == "[hidden]"


def test_overrides_win_over_the_profile(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POLYPHONE_TOKEN", "tok-from-env-789")
    avo = protocol.AgentVersionOverride("art-9", "42")
    r = build(builder(tmp_path), Target("Bookings", url="wss://staging.example.com/s", variant_id="v-x",
                                        mode="traditional", agent_version_override=avo,
                                        ca_file="/tmp/ca.pem", fetch_ice_servers=False))
    assert (r.url, r.variant_id, r.mode, r.agent_version_override, r.ca_file, r.fetch_ice_servers) == (
        "wss://staging.example.com/s", "v-x", "traditional", avo, "/tmp/ca.pem", False)


def test_an_unknown_profile_is_a_config_problem(tmp_path) -> None:
    with pytest.raises(PrepError) as info:
        build(builder(tmp_path), Target("Gone"))
    assert info.value.error.kind is ErrorKind.CONFIG
