"""The frozen app (PyInstaller one-folder build) works on its own: a broken bundle fails here.

Built by build/package.sh from these sources; run as a person runs it, with a private
sound server, a real Secret Service keyring, and Qt offscreen or on a real X display.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers import xvfb
from helpers.app_run import CHECKS, app_env, self_test_lines
from polyphone import APP_NAME, __version__

pytestmark = [pytest.mark.frozen, pytest.mark.timeout(1000)]  # the first test waits for the build


def run(exe: Path, *args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    # Not from the checkout: the bundle must not find anything of the source tree.
    return subprocess.run([str(exe), *args], env=env, cwd=exe.parent, capture_output=True,
                          text=True, timeout=timeout)


def test_self_test_passes(frozen_app, sound_server, keyring_env, tmp_path) -> None:
    env = app_env(tmp_path, sound_server.env, keyring_env, QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)
    out = run(frozen_app, "--self-test", env=env)
    lines = self_test_lines(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert list(lines) == list(CHECKS) and all(ok for ok, _ in lines.values()), out.stdout
    bundle = frozen_app.parent / "_internal"
    assert str(bundle / "polyphone" / "resources") in lines["resources"][1]
    audio = lines["audio"][1]
    assert "bundled libportaudio.so.2" in audio, audio
    assert "via pulse" in audio and "microphones" in audio, audio  # pactl ran, with the system's libraries
    assert "returned" in lines["call"][1]


def test_the_window_shows_on_a_real_display(frozen_app, tmp_path) -> None:
    """The xcb platform plugin and every library it needs are in the bundle."""
    why = xvfb.available()
    if why:
        pytest.skip(why)
    display = xvfb.start()
    try:
        env = app_env(tmp_path, DISPLAY=display.display,
                      DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
        env.pop("QT_QPA_PLATFORM", None)
        out = run(frozen_app, "--exit-when-shown", env=env, timeout=60)
    finally:
        display.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[:1] == ["polyphone: window shown"], out.stdout + out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]


def test_version_and_command_line(frozen_app, tmp_path) -> None:
    env = app_env(tmp_path)
    assert run(frozen_app, "--version", env=env).stdout.strip() == f"{APP_NAME} {__version__}"
    helped = run(frozen_app, "call", "--help", env=env)
    assert helped.returncode == 0 and "--demo" in helped.stdout


def test_bundle_carries_what_it_needs_and_not_what_it_does_not(frozen_app) -> None:
    internal = frozen_app.parent / "_internal"
    resources = internal / "polyphone" / "resources"
    for rel in ("sounds/greeting.wav", "sounds/caller-demo.wav", "styles/polyphone.qss",
                "polyphone.desktop", "icons/polyphone.svg", "icons/hicolor/256x256/apps/polyphone.png"):
        assert (resources / rel).is_file(), rel
    assert (internal / "libportaudio.so.2").is_file()
    assert (internal / "livekit" / "rtc" / "resources" / "liblivekit_ffi.so").is_file()
    assert (internal / "espeakng_loader" / "libespeak-ng.so").is_file()                 # say = "..."
    assert (internal / "espeakng_loader" / "espeak-ng-data" / "phontab").is_file()
    assert (internal / "pocketsphinx" / "model" / "en-us" / "en-us.lm.bin").is_file()  # transcripts
    names = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}
    for unwanted in ("PySide6/QtNetwork.abi3.so", "PySide6/QtQml.abi3.so", "PySide6/Qt/lib/libQt6Qml.so.6",
                     "PySide6/Qt/lib/libQt6Quick.so.6", "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
                     "libgtk-3.so.0", "libasound.so.2", "polyphone/resources/screenshots"):
        assert unwanted not in names, unwanted
    assert not [n for n in names if n.startswith("PySide6/Qt/translations/")]


def test_every_bundled_library_finds_its_dependencies(frozen_app) -> None:
    """What the pruning of unused libraries (bundle.prune_libraries) left is complete:
    with the library path the bootloader sets, no library has a dependency not found."""
    internal = frozen_app.parent / "_internal"
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
    missing = {}
    for path in sorted(internal.rglob("*.so*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        out = subprocess.run(["ldd", str(path)], env=env, capture_output=True, text=True, timeout=30)
        lost = [line.split()[0] for line in out.stdout.splitlines() if "not found" in line]
        if lost:
            missing[str(path.relative_to(internal))] = lost
    assert not missing, missing


async def test_the_frozen_app_trusts_a_ca_in_the_system_store(frozen_app, tmp_path) -> None:
    """A PyInstaller bundle does not see the OS trust store by itself; through
    truststore it trusts a CA installed the system's way (no --ca-file, no SSL_CERT_* variables)
    for the websocket and the ice-servers fetch, and refuses the gateway once the CA is gone.
    Everything stays on 127.0.0.1; the store is rebuilt as it was."""
    import asyncio
    import json

    from helpers import leak_scan
    from helpers.tls import (
        BUNDLE,
        TRUST_ENV,
        ca_in_system_store,
        digest,
        make_ca_and_server_cert,
        store_unavailable,
        wss_front,
    )
    from polyphone import protocol
    from polyphone.localgw import LocalGateway

    why = store_unavailable()
    if why:
        pytest.fail(why)
    token = leak_scan.canary("frozen-store")
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    env = app_env(tmp_path)
    for name in (*TRUST_ENV, "PYTHONPATH"):
        env.pop(name, None)
    env["POLYPHONE_TOKEN"] = token

    async def call(url: str, *extra: str) -> tuple[int, dict, str]:
        proc = await asyncio.create_subprocess_exec(
            str(frozen_app), "call", "--url", url, "--mode", "echo", "--json", "--duration", "0.5", "-v",
            *extra, env=env, cwd=frozen_app.parent,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 90)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert token not in out.decode() + err.decode()
        assert out.strip(), err.decode()[-3000:]
        return proc.returncode, json.loads(out), err.decode()

    before = digest(BUNDLE)
    gateway = LocalGateway(tokens=[token], host="127.0.0.1", port=0)
    await gateway.start()
    try:
        async with wss_front(gateway, cert, key) as (url, accepted):
            with ca_in_system_store(ca):
                rc, report, err = await call(url)
                assert rc == 0 and report["result"] == "ended" and report["error"] is None, err[-3000:]
                assert accepted == [protocol.SIGNAL_PATH]
                assert ("gateway offered 1 ICE server(s)" in err
                        or "(1 server(s)); ignored for this call" in err), err[-3000:]
            assert digest(BUNDLE) == before

            rc, report, err = await call(url, "--no-ice-fetch")
            error = report["error"]
            assert error["kind"] == "network", report
            assert "certificate" in error["message"] and "could not be verified" in error["message"]
            assert rc == 4, err[-3000:]
            assert accepted == [protocol.SIGNAL_PATH]
    finally:
        await asyncio.wait_for(gateway.stop(), 15)
