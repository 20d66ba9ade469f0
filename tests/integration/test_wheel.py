"""`pip install .` gives a working `polyphone`: the wheel holds the package and its resources,
and, installed into a fresh virtual environment, runs its self-test from there.

The fresh environment gets Polyphone from the wheel alone (`--no-deps`); its dependencies
come from this checkout's .venv through a .pth line, so the test needs no download beyond
the build backend (hatchling, from the package index, as `pip install .` fetches it).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from helpers import keyring_daemon
from helpers.app_run import CHECKS, app_env, self_test_lines

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([*PIP, "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("polyphone-*.whl")
    return path


def test_wheel_holds_the_package_and_resources(wheel) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in ("sounds/greeting.wav", "sounds/caller-demo.wav", "styles/polyphone.qss",
                "polyphone.desktop", "icons/polyphone.svg", "icons/polyphone.ico", "icons/polyphone.icns",
                "icons/hicolor/512x512/apps/polyphone.png"):
        assert f"polyphone/resources/{rel}" in names, rel
    for module in ("__main__.py", "cli/self_test.py", "cli/desktop.py", "gui/app.py", "localgw/agents.py"):
        assert f"polyphone/{module}" in names, module
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "polyphone = polyphone.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_passes_its_self_test(wheel, sound_server, tmp_path) -> None:
    if not keyring_daemon.available():
        pytest.skip("dbus-daemon / gnome-keyring-daemon are not installed (build/setup.sh --test)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    installed = subprocess.run([*PIP, "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    service = keyring_daemon.start(tmp_path / "keyring")
    try:
        env = app_env(tmp_path, sound_server.env, service.env, QT_QPA_PLATFORM="offscreen")
        env.pop("PYTHONPATH", None)
        out = subprocess.run([str(venv / "bin" / "polyphone"), "--self-test"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=90)
    finally:
        service.stop()
    lines = self_test_lines(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert list(lines) == list(CHECKS)
    assert str(site / "polyphone") in out.stdout.splitlines()[0]   # the wheel's copy ran ...
    assert str(site / "polyphone" / "resources") in lines["resources"][1]  # ... with its resources
