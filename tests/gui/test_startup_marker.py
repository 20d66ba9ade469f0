"""`polyphone --exit-when-shown` (what the start-up benchmark and the frozen-app test time) and
the microphone permission gate, as they behave on Linux."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.app_run import app_env
from polyphone.gui import permissions

ROOT = Path(__file__).resolve().parents[2]


def test_marker_once_the_window_paints_then_a_clean_exit(tmp_path) -> None:
    env = app_env(tmp_path, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT / "app"),
                  DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    out = subprocess.run([sys.executable, "-m", "polyphone", "--exit-when-shown"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["polyphone: window shown"]
    assert (tmp_path / "config" / "profiles.toml").is_file()  # a real start: first launch ran


def test_linux_grants_the_microphone_so_the_meter_starts_at_launch(qapp) -> None:
    assert permissions.microphone_granted()
