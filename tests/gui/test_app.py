"""`polyphone` as a person starts it: a real process, the real audio pipeline on virtual devices."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import wave
from pathlib import Path

from helpers.qt_waits import until
from helpers.waits import wait_until
from polyphone import config

ROOT = Path(__file__).resolve().parents[2]
RUN = "import sys; from polyphone.gui.app import main; sys.exit(main(sys.argv[1:]))"


def test_first_launch_demo_call_and_clean_exit(sound_server, tmp_path) -> None:
    cfg, data = tmp_path / "config", tmp_path / "data"
    config.SettingsStore(cfg / "settings.toml").save(config.Settings(recording=True))
    env = dict(sound_server.child_env(), QT_QPA_PLATFORM="offscreen", POLYPHONE_CONFIG_DIR=str(cfg),
               POLYPHONE_DATA_DIR=str(data), PYTHONFAULTHANDLER="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "app"), os.environ.get("PYTHONPATH", "")]))
    env.pop("POLYPHONE_TOKEN", None)
    proc = subprocess.run([sys.executable, "-c", RUN, "--demo", "--quit-after", "4", "--verbose"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # first launch wrote the two built-in profiles
    assert [p.name for p in config.ProfileStore(cfg / "profiles.toml").load()] == [
        config.LOCAL_PROFILE, "PolyAI US"]
    rows = sqlite3.connect(data / "history.sqlite3").execute(
        "SELECT profile, result, session_id, duration_s, recording_path FROM calls").fetchall()
    assert len(rows) == 1
    profile, result, session_id, duration, recording = rows[0]
    assert (profile, result) == (config.LOCAL_PROFILE, "ended") and session_id and duration > 2
    with wave.open(recording) as w:
        assert w.getnchannels() == 2 and w.getnframes() > 48_000 * 2
    # closing the window hung up cleanly: the embedded gateway saw the client's close
    assert "ended: closed by the client" in proc.stderr
    lag = re.search(r"event loop lag: worst ([\d.]+) ms", proc.stderr)
    assert lag, proc.stderr[-2000:]
    print(f"\nevent loop lag in the app (real pipeline, demo agent): worst {lag.group(1)} ms")


def test_sigterm_during_a_call_hangs_up_cleanly(sound_server, tmp_path) -> None:
    import signal
    import threading
    import time

    env = dict(sound_server.child_env(), QT_QPA_PLATFORM="offscreen",
               POLYPHONE_CONFIG_DIR=str(tmp_path / "config"), POLYPHONE_DATA_DIR=str(tmp_path / "data"),
               PYTHONPATH=os.pathsep.join([str(ROOT / "app"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", RUN, "--demo", "--verbose"], env=env, cwd=ROOT,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        def connected() -> bool:
            assert proc.poll() is None, "".join(lines)[-2000:]
            return any("peer connected" in line or "demo agent" in line for line in lines)

        wait_until(connected, 30, 0.1, lambda: "the call to connect:\n" + "".join(lines)[-2000:])
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    text = "".join(lines)
    assert "ended: closed by the client" in text, text[-2000:]
    row = sqlite3.connect(tmp_path / "data" / "history.sqlite3").execute(
        "SELECT result FROM calls").fetchall()
    assert row == [("ended",)]


def test_an_unreadable_settings_file_is_reported_and_never_overwritten(qloop, tmp_path) -> None:
    from polyphone.gui import app as gapp
    from polyphone.secrets import MemoryStore
    from polyphone.services.call_media import SilentMedia
    from polyphone.services.tokens import TokenVault

    settings = tmp_path / "config" / "settings.toml"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("this = = broken")
    p = gapp.Polyphone(gapp.parse_args([]), vault=TokenVault(MemoryStore()),
                       media_factory=lambda o, e: SilentMedia(e))
    assert any("could not be read" in n for n in p.notices)
    assert (tmp_path / "config" / "profiles.toml").exists()   # first launch wrote the profiles
    p.window.banner.show_notice(p.notices[0])
    p.settings.theme = "dark"

    async def close():
        p.window.close()
        await until(lambda: p.window._shut_down)
    qloop.run(close())
    p.stop()
    assert settings.read_text() == "this = = broken"


def test_no_display_is_a_clear_message_not_a_qt_abort(tmp_path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(POLYPHONE_CONFIG_DIR=str(tmp_path / "c"), POLYPHONE_DATA_DIR=str(tmp_path / "d"))
    proc = subprocess.run([sys.executable, "-m", "polyphone"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "needs a desktop session" in proc.stderr and "polyphone call --demo" in proc.stderr
