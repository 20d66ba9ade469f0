"""No token in anything Polyphone writes: logs, JSON reports, history, recordings, crash output.

`test_a_real_call_leaves_the_token_nowhere` places real calls with one distinctive
token through the real local gateway (`polyphone gateway` at debug level): the CLI
with -v, --json and --record, the same CLI killed mid-call with SIGABRT under
faulthandler (crash output), and the engine in this process with every logger at
DEBUG into a file, a listener that raises on every event (the internal-error path),
a history row and a stereo recording named the app's way. Everything written is
searched (helpers/leak_scan: raw, URL-quoted, base64, UTF-16): zero hits.

The session-wide scan itself (helpers/leak_scan.py, registered in tests/conftest.py)
is proven here by running pytest on a leaky and a clean test module.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import leak_scan
from helpers.waits import until
from polyphone.audio.files import MemorySink, PacedSource, read_wav
from polyphone.audio.recorder import CallRecorder, safe_recording_name
from polyphone.engine.call import Call
from polyphone.engine.request import CallRequest
from polyphone.history import CallRecord, History
from polyphone.paths import resource

pytestmark = pytest.mark.integration
TESTS = Path(__file__).resolve().parents[1]


async def start_gateway(token: str, log_path: Path):
    env = dict(os.environ, POLYPHONE_GATEWAY_TOKENS=token)
    log = open(log_path, "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "gateway", "--log-level", "debug", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=log)
    log.close()
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("listening ws://127.0.0.1:"), line
    return proc, line.split()[1]


def cli_env(tmp: Path, token: str) -> dict[str, str]:
    return dict(os.environ, POLYPHONE_TOKEN=token, POLYPHONE_CONFIG_DIR=str(tmp / "config"),
                POLYPHONE_DATA_DIR=str(tmp / "data"), PYTHONFAULTHANDLER="1",
                PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")


async def cli_call(tmp: Path, token: str, url: str) -> None:
    """-v, --json and --record; stdout and stderr kept as files."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "call", "--url", url, "--mode", "echo", "-v", "--json",
        "--play", str(resource("sounds/caller-demo.wav")), "--duration", "1.5",
        "--record", str(tmp / "data" / "reply.wav"), env=cli_env(tmp, token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    (tmp / "cli.json").write_bytes(out)
    (tmp / "cli.stderr").write_bytes(err)
    assert proc.returncode == 0, err.decode()[-2000:]


async def cli_call_crashes(tmp: Path, token: str, url: str) -> None:
    """A call killed mid-call by SIGABRT: faulthandler prints every thread's stack."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "call", "--url", url, "--mode", "echo", "-v",
        "--duration", "60", env=cli_env(tmp, token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    seen = b""
    try:
        while b"[call] CONNECTED" not in seen:
            chunk = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert chunk, seen.decode()[-2000:]
            seen += chunk
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGABRT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    (tmp / "crash.stderr").write_bytes(seen + err)
    (tmp / "crash.stdout").write_bytes(out)
    assert proc.returncode == -signal.SIGABRT
    assert b"Fatal Python error: Aborted" in err and b"File " in err  # the crash output is there


async def engine_call(tmp: Path, token: str, url: str) -> None:
    """The engine in this process, every logger at DEBUG into a file, history and a recording."""
    handler = logging.FileHandler(tmp / "debug.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    lines: list[str] = []

    def listener(event) -> None:  # a listener that breaks on every event: the error path
        lines.append(repr(event))
        raise RuntimeError(f"listener broke on {type(event).__name__}")

    try:
        speech = read_wav(resource("sounds/greeting.wav"))[: 48_000 * 2]
        request = CallRequest(url=url, token=token, mode="echo", fetch_ice_servers=False)
        call = Call(request, PacedSource(speech), MemorySink(), listener)
        task = asyncio.ensure_future(call.run())
        await until(lambda: call.result.connected or task.done(), 20, 0.05, error=None)
        await asyncio.sleep(1.0)
        result = await asyncio.wait_for(call.hangup(), 15)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    assert result.ok, result.error
    (tmp / "events.txt").write_text("\n".join(lines))
    history = History(tmp / "data" / "history.sqlite3")
    started = time.time()
    name = safe_recording_name("Leak check", started)
    with CallRecorder(tmp / "data" / name) as recorder:
        recorder.add_caller(speech[:48_000], time.monotonic())
    history.add(CallRecord(started_at=started, profile="Leak check", result="ended",
                           session_id=result.session_id, call_sid=result.call_sid,
                           duration_s=result.duration_s, recording_path=str(tmp / "data" / name)))
    history.close()


async def test_a_real_call_leaves_the_token_nowhere(tmp_path) -> None:
    token = leak_scan.canary("call")
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    proc, url = await start_gateway(token, out / "gateway.log")
    try:
        await cli_call(out, token, url)
        await cli_call_crashes(out, token, url)
        await engine_call(out, token, url)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    for expected in ("gateway.log", "cli.json", "cli.stderr", "crash.stderr", "debug.log",
                     "events.txt", "data/history.sqlite3", "data/reply.wav"):
        assert expected in written, written
    assert (out / "debug.log").stat().st_size > 10_000  # DEBUG from websockets, aiortc, aioice...
    scanner = leak_scan.Scanner([token])
    blob = base64.b64encode(b"Bearer " + token.encode())
    assert scanner.find(b"x" + blob + b"y"), "the scanner finds an encoded token"
    hits = scanner.scan_tree(out, set())
    assert hits == [], hits


# --- the session-wide scan itself ------------------------------------------------------------

LEAKY = '''
import base64
TOKEN = "leaky-token-{n}"
def test_writes_it_to_a_file(tmp_path):
    (tmp_path / "app.log").write_text("auth=" + base64.b64encode(TOKEN.encode()).decode())
def test_prints_it():
    print("connecting with", TOKEN)
'''
CLEAN = '''
TOKEN = "clean-token-{n}"
def test_writes_something_else(tmp_path):
    (tmp_path / "app.log").write_text("auth=<redacted>")
'''


def run_pytest(tmp: Path, body: str) -> subprocess.CompletedProcess:
    project = tmp / "project"
    project.mkdir(parents=True)
    (project / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\npytest_plugins = ['helpers.leak_scan']\n")
    (project / "test_it.py").write_text(body.format(n=os.getpid() * 1000 + 42))
    env = dict(os.environ, HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "home" / ".config"),
               XDG_DATA_HOME=str(tmp / "home" / ".local" / "share"))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--basetemp", str(tmp / "basetemp"), "-c", "/dev/null",
                           "--rootdir", str(project), str(project)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_the_session_scan_fails_a_run_whose_outputs_hold_a_token(tmp_path) -> None:
    leaky = run_pytest(tmp_path / "leaky", LEAKY)
    assert "2 passed" in leaky.stdout, leaky.stdout
    assert leaky.returncode == 1, leaky.stdout
    assert "LEAK: test token leaky-… (base64) in" in leaky.stdout and "app.log" in leaky.stdout
    assert "test_prints_it: Captured stdout call" in leaky.stdout
    clean = run_pytest(tmp_path / "clean", CLEAN)
    assert clean.returncode == 0 and "1 passed" in clean.stdout, clean.stdout
