"""End to end under a real X display (Xvfb, started here) with the real sound server and the
real keyring: pick the virtual devices, store a token, call the local demo agent, check what
the window shows, hang up, check the history and the recording; screenshots of the idle
window, a live call and an error. Set POLYPHONE_SCREENSHOTS=DIR to keep them there too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from helpers import keyring_daemon
from helpers import xvfb as xvfb_server

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("e2e_driver.py")

pytestmark = [
    pytest.mark.skipif(xvfb_server.available() is not None, reason=str(xvfb_server.available())),
    pytest.mark.skipif(not keyring_daemon.available(), reason="needs dbus and gnome-keyring"),
]


@pytest.fixture
def xvfb(tmp_path):
    """A private X server (helpers/xvfb.py); yields its DISPLAY."""
    display = xvfb_server.start("1280x960x24")
    try:
        yield display.display
    finally:
        display.stop()


def test_the_app_end_to_end_on_a_real_display(xvfb, sound_server, tmp_path) -> None:
    service = keyring_daemon.start(tmp_path / "keyring")
    out = tmp_path / "out"
    try:
        env = dict(sound_server.child_env(), **service.env, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb",
                   POLYPHONE_CONFIG_DIR=str(tmp_path / "config"), POLYPHONE_DATA_DIR=str(tmp_path / "data"),
                   PYTHONFAULTHANDLER="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "app"), os.environ.get("PYTHONPATH", "")]))
        for key in ("POLYPHONE_TOKEN", "PYTHON_KEYRING_BACKEND", "WAYLAND_DISPLAY"):
            env.pop(key, None)
        proc = subprocess.run([sys.executable, str(DRIVER), str(out)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=150)
    finally:
        service.stop()
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    assert proc.returncode == 0, f"{report.get('failure')}\n{proc.stderr[-4000:]}"
    assert report["platform"] == "xcb"
    # the keyring: shown, and the token went there (and nowhere else)
    assert "SecretService" in report["keyring_label"] and report["token_in_keyring"]
    for path in (tmp_path / "config").rglob("*"):
        assert not path.is_file() or "expired-token" not in path.read_text(errors="replace")
    # the live call as the window showed it
    call = report["call"]
    assert call["status"] == "Connected" and call["timer"] != "00:00"
    assert call["connection"]["signaling"] == "open" and call["connection"]["dtls"] == "connected"
    assert call["connection"]["ice-connection"] in ("connected", "completed")
    assert call["pair"].startswith("direct (host)") and call["session"] not in ("", "—")
    assert call["stats"]["rtt"].endswith("ms") and call["stats"]["recv"].endswith("kbit/s")
    assert call["codec"] == "opus/48000" and call["turns_ms"]
    assert ["STARTING", "CONNECTING", "NEGOTIATING", "CONNECTED", "ENDING", "ENDED"] == \
        report["states"][:6]
    # the history row and its recording
    h = report["history"]
    assert h["result"] == "ended" and h["session_id"] == call["session"] and h["duration_s"] > 5
    assert h["turns"] and Path(h["recording"]).is_file()
    with wave.open(h["recording"]) as w:
        assert w.getnchannels() == 2 and w.getnframes() > 48_000 * 5
    # the error: the gateway's UNAUTHORIZED, with the way to fix it
    assert "UNAUTHORIZED" in report["error"]["title"] and report["error"]["action"] == "Open token field"
    for name in ("idle", "call", "error"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    keep = os.environ.get("POLYPHONE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in ("idle", "call", "error"):
            shutil.copy(out / f"{name}.png", Path(keep) / f"{name}.png")
    print(f"\nevent loop lag in the end-to-end call: worst {report['lag_ms']} ms")
