"""Placing a call, the parts without Qt: profile, variant, secrets, recording path, history row."""

from __future__ import annotations

import pytest

from polyphone import config
from polyphone.engine.call import CallResult
from polyphone.engine.events import CallError, CallState, ErrorKind
from polyphone.secrets import MemoryStore
from polyphone.services import call_setup, errors
from polyphone.services.redact import Redactor
from polyphone.services.tokens import TokenVault


def test_a_deleted_demo_profile_still_calls_the_demo_agent(tmp_path) -> None:
    store = config.ProfileStore(tmp_path / "p.toml")
    store.save([config.Profile(name="Only this")])
    assert call_setup.load_profile(store, config.LOCAL_PROFILE).is_local
    with pytest.raises(call_setup.PrepError) as info:
        call_setup.load_profile(store, "Gone")
    assert errors.explain(info.value.error).action == errors.EDIT_PROFILE


def test_an_incomplete_profile_is_refused_with_its_problems(tmp_path) -> None:
    store = config.ProfileStore(tmp_path / "p.toml")
    store.save([config.Profile(name="Bad", region=config.CUSTOM, url="http://nope")])
    with pytest.raises(call_setup.PrepError) as info:
        call_setup.load_profile(store, "Bad")
    assert "not complete" in info.value.error.message


def test_variants_by_name() -> None:
    p = config.Profile(name="A", variant_id="v0", variants=[config.Variant("Fast", "v1")])
    logged = []
    assert call_setup.variant_id(p, "", logged.append) is None
    assert call_setup.variant_id(p, "Fast", logged.append) == "v1"
    assert call_setup.variant_id(p, "Gone", lambda *a: logged.append(a)) is None and logged


def test_secrets_include_turn_credentials() -> None:
    vault = TokenVault(MemoryStore())
    vault.save("A", "token-for-a-123")
    vault.set_turn_credential("A", "turn:t.example:3478", "turn-pass")
    p = config.Profile(name="A", ice_servers=[config.IceServerEntry(["turn:t.example:3478"], "alice"),
                                              config.IceServerEntry(["stun:s.example:3478"])])
    token, creds = call_setup.secrets_for(vault, p, lambda *a: None)
    assert token == "token-for-a-123" and creds == {"turn:t.example:3478": "turn-pass"}


def test_recording_path_and_an_unusable_folder(tmp_path) -> None:
    s = config.Settings(recording=False)
    assert call_setup.recording_path(s, "A", 0.0) == (None, "")
    s = config.Settings(recording=True, recording_folder=str(tmp_path / "rec"))
    path, problem = call_setup.recording_path(s, "Bookings / prod", 1_700_000_000.0)
    assert problem == "" and path.parent == tmp_path / "rec" and path.name.endswith("-Bookings-prod.wav")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s.recording_folder = str(blocker / "sub")
    path, problem = call_setup.recording_path(s, "A", 0.0)
    assert path is None and "Recording is off" in problem


def test_history_rows_for_each_outcome(tmp_path) -> None:
    redact = Redactor()
    redact.add("secret-token-99")
    ended = CallResult(state=CallState.ENDED, session_id="s", call_sid="c", connected=True, duration_s=3.0)
    rec = call_setup.history_record("A", "Fast", 1.0, ended, None, tmp_path / "missing.wav", [700.0],
                                    redact)
    assert (rec.result, rec.session_id, rec.recording_path) == ("ended", "s", "")
    assert rec.turn_latencies_ms == [700.0]
    err = CallError(ErrorKind.GATEWAY, "bad secret-token-99", code="UNAUTHORIZED")
    rec = call_setup.history_record("A", "", 1.0, None, err, None, [], redact)
    assert (rec.result, rec.error_code, rec.error_message) == ("failed", "UNAUTHORIZED", "bad [hidden]")
    rec = call_setup.history_record("A", "", 1.0, None, None, None, [], redact)
    assert rec.result == "cancelled"
