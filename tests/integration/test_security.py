"""Security with real parts: TLS verification, ws:// only to loopback, loopback binding,
private files, and no token in any process's argv.

- A real wss:// server (a TLS websocket front for the real local gateway) with a
  certificate from a private CA made here: `polyphone call` refuses it without the
  CA and calls through it with `--ca-file`.
- ws:// to a non-loopback address (the far end of a veth between two namespaces made here)
  is refused before any connection.
- The local gateway (class, `polyphone gateway`) listens on loopback unless told otherwise.
- Profiles, settings, history and recordings are 0600 in 0700 folders under umask 022.
- `polyphone token set` takes no token argument; the processes Polyphone starts during a
  call with real devices (pactl) never get the token in argv (seen by an audit hook).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from helpers import leak_scan, netns
from helpers.cli import run_polyphone
from helpers.tls import make_ca_and_server_cert, wss_front
from polyphone import protocol
from polyphone.config import CUSTOM, Profile, ProfileStore, Settings, SettingsStore
from polyphone.engine import ice
from polyphone.history import CallRecord, History
from polyphone.localgw import LocalGateway

pytestmark = pytest.mark.integration
TOKEN = "security-token-5e1d7c"
ROOT = Path(__file__).resolve().parents[2]


async def polyphone(*args: str, tmp: Path, env: dict | None = None, token: str | None = TOKEN,
                    timeout: float = 60, prelude: str = "") -> tuple[int, str, str]:
    """`polyphone ARGS` in a child process (after `prelude`, Python code run first in it)."""
    return await run_polyphone(*args, tmp=tmp, token=token, timeout=timeout, base_env=env,
                               prelude=prelude or "pass")


# --- TLS: a private CA and a wss:// front for the real local gateway ---------------------


@pytest.fixture
def tls_files(tmp_path):
    pytest.importorskip("cryptography")
    return make_ca_and_server_cert(tmp_path)


async def test_a_self_signed_wss_gateway_is_refused_unless_its_ca_is_given(
        gateway_factory, tls_files, tmp_path) -> None:
    ca, cert, key = tls_files
    gw = await gateway_factory(tokens=[TOKEN])
    async with wss_front(gw, cert, key) as (url, accepted):
        rc, out, err = await polyphone("call", "--url", url, "--mode", "echo", "--json",
                                       "--no-ice-fetch", "--duration", "0.5", tmp=tmp_path)
        assert rc == 4, err
        report = json.loads(out)
        assert "certificate" in report["error"]["message"] and "could not be verified" in err
        assert "CA" in report["error"]["action"]
        assert accepted == [] and gw.frames_received == 0  # no offer, no token, went out

        rc, out, err = await polyphone("call", "--url", url, "--mode", "echo", "--json",
                                       "--no-ice-fetch", "--duration", "0.5",
                                       "--ca-file", str(ca), tmp=tmp_path)
        assert rc == 0, err
        assert json.loads(out)["result"] == "ended" and accepted == [protocol.SIGNAL_PATH]
    assert TOKEN not in out + err


async def test_the_ice_server_fetch_checks_the_certificate_too(gateway_factory, tls_files) -> None:
    ca, cert, key = tls_files
    gw = await gateway_factory(tokens=[TOKEN])
    async with wss_front(gw, cert, key) as (url, _):
        servers, why = await ice.fetch_gateway_servers(url, TOKEN, timeout=5)
        assert servers is None and "CERTIFICATE_VERIFY_FAILED" in why.upper().replace(" ", "_")
        assert TOKEN not in why
        servers, why = await ice.fetch_gateway_servers(url, TOKEN, timeout=5, ca_file=str(ca))
        assert why == "" and [list(s.urls) for s in servers] == [["stun:127.0.0.1:9"]]


# --- ws:// only to loopback, and the gateway's own binding ------------------------------


COUNTER = """
import socket, sys
server = socket.create_server((sys.argv[1], 0))
print("listening", server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    print("connection", flush=True)
    conn.close()
"""


async def test_ws_to_a_non_loopback_address_is_refused_before_connecting(tmp_path) -> None:
    """A real non-loopback address whatever this machine's interfaces: the far end of a veth
    between two network namespaces made here. A listener there counts connections; a plain
    TCP connect from the caller's side proves it is reachable, then polyphone must not add one."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.fail(f"this test needs network namespaces: {reason}")
    link = netns.Link()
    listener = await asyncio.create_subprocess_exec(
        *link.argv(link.gateway_ns, sys.executable, "-c", COUNTER, link.gateway_ip),
        stdout=asyncio.subprocess.PIPE)
    try:
        port = int((await asyncio.wait_for(listener.stdout.readline(), 15)).split()[-1])
        probe = await asyncio.create_subprocess_exec(*link.argv(
            link.caller_ns, sys.executable, "-c",
            f"import socket; socket.create_connection(({link.gateway_ip!r}, {port}), 5).close()"))
        assert await asyncio.wait_for(probe.wait(), 15) == 0
        assert await asyncio.wait_for(listener.stdout.readline(), 15) == b"connection\n"
        rc, out, err = await run_polyphone(
            "call", "--url", f"ws://{link.gateway_ip}:{port}{protocol.SIGNAL_PATH}", "--json",
            tmp=tmp_path, token=TOKEN, prelude="pass", wrapper=tuple(link.argv(link.caller_ns)))
    finally:
        listener.kill()
        rest, _ = await listener.communicate()
        link.close()
    assert rc == 2, err
    assert "Refusing an unencrypted ws://" in err and "wss://" in err
    assert json.loads(out)["error"]["kind"] == "config"
    assert rest.count(b"connection") == 0


async def test_the_local_gateway_listens_on_loopback_by_default() -> None:
    gateway = LocalGateway(tokens=[TOKEN])
    await gateway.start()
    try:
        hosts = {sock.getsockname()[0] for sock in gateway._server.sockets}
        assert hosts and all(ipaddress.ip_address(h).is_loopback for h in hosts), hosts
        assert gateway.url.startswith("ws://127.0.0.1:")
    finally:
        await gateway.stop()


PROBE = """
import socket, sys
for host in sys.argv[1:]:
    try:
        socket.create_connection((host, PORT), timeout=2).close()
        print(host, "open")
    except OSError:
        print(host, "refused")
"""


async def test_polyphone_gateway_binds_loopback_unless_told(tmp_path) -> None:
    """In a network namespace with a non-loopback address of its own (a veth end), the gateway
    answers on 127.0.0.1 and not on that address."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.fail(f"this test needs network namespaces: {reason}")
    link = netns.Link()
    env = dict(os.environ, POLYPHONE_GATEWAY_TOKENS=TOKEN)
    proc = await asyncio.create_subprocess_exec(
        *link.argv(link.gateway_ns, sys.executable, "-m", "polyphone", "gateway"), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.fullmatch(r"listening ws://127\.0\.0\.1:(\d+)/api/v1/webrtc/signal\n", line)
        assert match, line
        probe = await asyncio.create_subprocess_exec(
            *link.argv(link.gateway_ns, sys.executable, "-c",
                       PROBE.replace("PORT", match.group(1)), link.gateway_ip, "127.0.0.1"),
            stdout=asyncio.subprocess.PIPE)
        seen, _ = await asyncio.wait_for(probe.communicate(), 15)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        link.close()
    assert seen.decode().split("\n")[:2] == [f"{link.gateway_ip} refused", "127.0.0.1 open"]
    assert b"not loopback" not in err and TOKEN.encode() not in err


# --- files readable by the user only ------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_config_history_and_recordings_are_private(tmp_path, umask_022) -> None:
    from polyphone.audio.files import WavSink
    from polyphone.audio.recorder import CallRecorder

    cfg = tmp_path / "new" / "config"
    ProfileStore(cfg / "profiles.toml").save([Profile(name="P", region=CUSTOM, url="wss://x/y")])
    SettingsStore(cfg / "settings.toml").save(Settings())
    history = History(tmp_path / "new" / "data" / "history.sqlite3")
    history.add(CallRecord(started_at=1.0, profile="P", result="ended"))
    history.close()
    rec_dir = tmp_path / "new" / "data" / "recordings"
    rec_dir.mkdir(mode=0o700)
    recorder = CallRecorder(rec_dir / "call.wav")
    recorder.close()
    sink = WavSink(rec_dir / "reply.wav")
    sink.close()
    for f in (cfg / "profiles.toml", cfg / "settings.toml", history.path, rec_dir / "call.wav",
              rec_dir / "reply.wav"):
        assert mode(f) == 0o600, (f, oct(mode(f)))
    for d in (tmp_path / "new", cfg, history.path.parent):
        assert mode(d) == 0o700, (d, oct(mode(d)))


def test_existing_files_are_tightened_and_keep_their_content(tmp_path, umask_022) -> None:
    from polyphone.audio.recorder import CallRecorder

    db = tmp_path / "history.sqlite3"
    history = History(db)
    history.add(CallRecord(started_at=2.0, profile="Kept", result="ended"))
    history.close()
    os.chmod(db, 0o644)
    history = History(db)
    assert [r.profile for r in history.list()] == ["Kept"]
    history.close()
    assert mode(db) == 0o600
    old = tmp_path / "old.wav"
    old.write_bytes(b"x" * 10)
    os.chmod(old, 0o644)
    CallRecorder(old).close()  # a new recording over an old file of the same name
    assert mode(old) == 0o600


# --- no secret in argv ---------------------------------------------------------------------


async def test_token_set_takes_no_token_argument(tmp_path) -> None:
    rc, _, err = await polyphone("token", "set", "--profile", "P", TOKEN, tmp=tmp_path, token=None)
    assert rc == 2 and "unrecognized arguments" in err
    rc, out, _ = await polyphone("token", "--help", tmp=tmp_path, token=None)
    assert rc == 0 and "--token" not in out


AUDIT = """
import json, os, sys
_log = open(os.environ["ARGV_LOG"], "a")
def _hook(event, args):
    if event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system"):
        argv = args[1] if event != "os.system" else args[0]
        _log.write(json.dumps([event, [os.fsdecode(a) if isinstance(a, (str, bytes)) else str(a)
                                       for a in (argv if isinstance(argv, (list, tuple)) else [argv])]])
                   + "\\n")
        _log.flush()
sys.addaudithook(_hook)
"""


async def test_no_process_polyphone_starts_gets_the_token_in_argv(sound_server, gateway_factory,
                                                                   tmp_path) -> None:
    token = leak_scan.canary("argv")
    gw = await gateway_factory(tokens=[token])
    log = tmp_path / "argv.jsonl"
    env = dict(sound_server.child_env(), ARGV_LOG=str(log))
    rc, out, err = await polyphone(
        "call", "--url", gw.url, "--mode", "echo", "--input", "default", "--output", "default",
        "--duration", "1", "--json", "-v", tmp=tmp_path, env=env, token=token, prelude=AUDIT)
    assert rc == 0, err[-3000:]
    started = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("pactl" in " ".join(argv) for _, argv in started), started  # not vacuous
    for _, argv in started:
        assert not any(token in a for a in argv), argv
    # and nothing a user sees carries it
    assert token not in out + err
