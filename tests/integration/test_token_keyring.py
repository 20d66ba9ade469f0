"""`polyphone token` and `polyphone call --profile` against a real Secret Service keyring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import keyring_daemon
from polyphone.config import CUSTOM, Profile, ProfileStore

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not keyring_daemon.available(),
                                 reason="needs dbus and gnome-keyring (build/setup.sh --test)")]
TOKEN = "kr-token-0c7e9a51"


@pytest.fixture(scope="module")
def unlocked(tmp_path_factory):
    service = keyring_daemon.start(tmp_path_factory.mktemp("keyring"))
    yield service
    service.stop()


def polyphone(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "polyphone", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=timeout)


def env_for(service: keyring_daemon.SecretService | None, tmp: Path, **extra: str) -> dict:
    env = dict(os.environ, POLYPHONE_CONFIG_DIR=str(tmp / "cfg"),
               POLYPHONE_DATA_DIR=str(tmp / "data"), **extra)
    for key in ("POLYPHONE_TOKEN", "PYTHON_KEYRING_BACKEND"):
        env.pop(key, None)
    if service is not None:
        env.update(service.env)
    return env


def test_set_status_clear_round_trip(unlocked, tmp_path) -> None:
    env = env_for(unlocked, tmp_path)
    r = polyphone(env, "token", "set", "--profile", "Bookings", stdin=TOKEN + "\n")
    assert r.returncode == 0 and "SecretService" in r.stdout
    assert TOKEN not in r.stdout + r.stderr
    r = polyphone(env, "token", "status", "--profile", "Bookings")
    assert r.returncode == 0 and "token set" in r.stdout
    # a bad paste is refused and the saved token is kept
    r = polyphone(env, "token", "set", "--profile", "Bookings", stdin="two words\n")
    assert r.returncode == 6 and "spaces" in r.stderr
    assert polyphone(env, "token", "status", "--profile", "Bookings").returncode == 0
    r = polyphone(env, "token", "clear", "--profile", "Bookings")
    assert r.returncode == 0 and "removed" in r.stdout
    r = polyphone(env, "token", "status", "--profile", "Bookings")
    assert r.returncode == 1 and "not set" in r.stdout


async def test_a_call_reads_the_profile_token_from_the_keyring(unlocked, tmp_path,
                                                               gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    env = env_for(unlocked, tmp_path)
    ProfileStore(tmp_path / "cfg" / "profiles.toml").save(
        [Profile(name="Local echo", region=CUSTOM, url=gw.url, mode="echo")])
    assert polyphone(env, "token", "set", "--profile", "Local echo",
                     stdin=TOKEN).returncode == 0
    import asyncio
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "call", "--profile", "Local echo", "--duration", "0.5",
        "--json", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 40)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["result"] == "ended"
    assert TOKEN.encode() not in out + err


def test_locked_keyring_says_so_and_how_to_fix(tmp_path) -> None:
    service = keyring_daemon.start(tmp_path / "locked", unlock=False)
    try:
        r = polyphone(env_for(service, tmp_path), "token", "set", "--profile", "P", stdin=TOKEN)
    finally:
        service.stop()
    assert r.returncode == 6
    assert "keyring is locked" in r.stderr and "Unlock it" in r.stderr
    assert "Traceback" not in r.stderr and TOKEN not in r.stderr


def test_no_keyring_offers_the_session_only_way(tmp_path) -> None:
    env = env_for(None, tmp_path, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    r = polyphone(env, "token", "set", "--profile", "P", stdin=TOKEN)
    assert r.returncode == 6
    assert "No system keyring" in r.stderr and "POLYPHONE_TOKEN" in r.stderr
    assert "Traceback" not in r.stderr
    r = polyphone(env, "call", "--url", "ws://127.0.0.1:9/x", "--profile", "P")
    # Nothing made a profile P in this fresh config: a usage error, before any keyring is asked.
    assert r.returncode == 2 and "No profile named 'P'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
