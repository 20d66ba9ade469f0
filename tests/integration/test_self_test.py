"""`polyphone --self-test` from the source checkout: real sound server, real keyring, real call.

The frozen app runs the same checks in tests/frozen; here each failure a person can meet
is produced for real (no keyring on the bus, no display) and must say what to do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.app_run import CHECKS, app_env, self_test_lines

ROOT = Path(__file__).resolve().parents[2]
SELF_TEST = [sys.executable, "-m", "polyphone", "--self-test"]


def run_self_test(env: dict[str, str]) -> subprocess.CompletedProcess:
    env = dict(env, PYTHONPATH=str(ROOT / "app"))
    return subprocess.run(SELF_TEST, env=env, cwd=ROOT, capture_output=True, text=True, timeout=90)


def test_every_check_passes_with_real_parts(sound_server, keyring_env, tmp_path) -> None:
    env = app_env(tmp_path, sound_server.env, keyring_env, QT_QPA_PLATFORM="offscreen")
    out = run_self_test(env)
    lines = self_test_lines(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert list(lines) == list(CHECKS), out.stdout
    assert all(ok for ok, _ in lines.values()), out.stdout
    assert "microphones" in lines["audio"][1] and "via pulse" in lines["audio"][1], out.stdout
    assert "offscreen" in lines["qt"][1] and "svg" in lines["qt"][1]
    assert "answers" in lines["keyring"][1]
    assert "returned" in lines["call"][1]
    assert "heard 'i would like to book a table for two'" in lines["speech"][1]
    assert out.stdout.strip().endswith("all checks passed")


def test_no_keyring_fails_with_the_fix(tmp_path) -> None:
    env = app_env(tmp_path, QT_QPA_PLATFORM="offscreen",
                  DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    out = run_self_test(env)
    lines = self_test_lines(out.stdout)
    assert out.returncode == 1, out.stdout
    ok, text = lines["keyring"]
    assert not ok and "— fix: " in text and "keyring" in text.lower()
    # everything that does not need the keyring still passes, each on its own line
    assert all(lines[name][0] for name in CHECKS if name != "keyring"), out.stdout
    assert out.stdout.strip().endswith(f"1 of {len(CHECKS)} checks failed")
    assert len(out.stdout.strip().splitlines()) == len(CHECKS) + 2  # header, checks, summary


def test_no_display_fails_the_qt_check_with_the_fix(tmp_path) -> None:
    env = app_env(tmp_path, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(var, None)
    out = run_self_test(env)
    ok, text = self_test_lines(out.stdout)["qt"]
    assert out.returncode == 1
    assert not ok and "no display was found" in text and "fix: " in text and "offscreen" in text


def test_unknown_argument_is_a_usage_error() -> None:
    out = subprocess.run(SELF_TEST + ["--bogus"], env=dict(app_env(Path("/nonexistent")),
                                                           PYTHONPATH=str(ROOT / "app")),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "takes no arguments" in out.stderr
