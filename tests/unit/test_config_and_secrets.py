"""Profiles on disk and the secret-store rules (the real keyring is in integration)."""

from __future__ import annotations

import stat

import pytest

from polyphone import config
from polyphone.config import ConfigError, IceServerEntry, Profile, ProfileStore, Variant
from polyphone.engine.request import request_from_profile
from polyphone.secrets import MemoryStore, SecretStoreError, validate_token


def test_builtin_profiles_on_first_launch(tmp_path) -> None:
    profiles = ProfileStore(tmp_path / "profiles.toml").load()
    assert [p.name for p in profiles] == [config.LOCAL_PROFILE, "PolyAI US"]
    assert profiles[0].is_local and profiles[1].signal_url() == config.region_url("us-1")


def test_round_trip_is_private_and_keeps_every_field(tmp_path) -> None:
    store = ProfileStore(tmp_path / "cfg" / "profiles.toml")
    p = Profile(name="Bookings", region="uk-1", account_id="acc", project_id="proj",
                variant_id="v1", variants=[Variant("A", "v1"), Variant("B", "v2")],
                artifact_version="art-7", lambda_deployment_version="12",
                caller="+441", callee="+442", ice_servers=[IceServerEntry(["turn:t:3478"], "u")])
    store.save([p])
    mode = stat.S_IMODE((tmp_path / "cfg" / "profiles.toml").stat().st_mode)
    assert mode == 0o600
    assert store.load() == [p]


def test_an_unreadable_file_is_reported_and_left_alone(tmp_path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="could not be read.*left as it is"):
        ProfileStore(path).load()
    assert path.read_text() == "this is = = not toml"


def test_validation_says_what_to_fix() -> None:
    bad = Profile(name="", region="mars", mode="loud")
    problems = " ".join(bad.validate())
    assert "name" in problems and "region" in problems and "mode" in problems
    insecure = Profile(name="x", region=config.CUSTOM, url="ws://gw.example.com/x")
    assert any("unencrypted" in p for p in insecure.validate())
    assert Profile(name="ok").validate() == []


def test_request_from_profile_maps_every_offer_field() -> None:
    p = Profile(name="x", mode="traditional", account_id="a", project_id="p", variant_id="v",
                artifact_version="art", caller="c1", callee="c2", call_sid="fixed",
                ice_servers=[IceServerEntry(["turn:t:3478"], "user")])
    req = request_from_profile(p, "wss://h/x", "tok", variant_id="v2",
                               turn_credential=lambda url: "turn-secret")
    offer = req.offer("v=0", req.new_call_sid())
    assert (offer.mode, offer.account_id, offer.project_id, offer.variant_id) == \
        ("traditional", "a", "p", "v2")
    assert offer.call_sid == "fixed" and offer.caller == "c1" and offer.callee == "c2"
    assert offer.agent_version_override.artifact_version == "art"
    assert offer.agent_version_override.lambda_deployment_version is None
    assert req.ice_servers[0].credential == "turn-secret"
    assert "turn-secret" not in repr(req) and "tok" not in repr(req).replace("token", "")


def test_memory_store_and_token_validation() -> None:
    s = MemoryStore()
    s.set("k", "v")
    assert s.get("k") == "v" and s.delete("k") and not s.delete("k")
    assert validate_token("  abc.def-123\n") == "abc.def-123"
    for bad in ("", "   ", "two words", "ctl\x07char", "x" * 9000):
        with pytest.raises(SecretStoreError):
            validate_token(bad)
