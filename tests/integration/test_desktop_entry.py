"""`polyphone desktop install|uninstall` puts Polyphone in a Linux desktop's menu and takes it out."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.app_run import app_env
from polyphone.cli import desktop

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = app_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "share"), PYTHONPATH=str(ROOT / "app"))
    return subprocess.run([sys.executable, "-m", "polyphone", "desktop", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_install_then_uninstall(tmp_path) -> None:
    share = tmp_path / "share"
    out = run(tmp_path, "install")
    assert out.returncode == 0, out.stderr
    entry = share / "applications" / "polyphone.desktop"
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read(entry)
    section = parsed["Desktop Entry"]
    assert section["Exec"] == f"{sys.executable} -m polyphone" or Path(section["Exec"]).name == "polyphone"
    assert Path(section["TryExec"]).is_absolute() and section["Icon"] == "polyphone"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    icons = share / "icons" / "hicolor"
    assert (icons / "48x48" / "apps" / "polyphone.png").is_file()
    assert (icons / "scalable" / "apps" / "polyphone.svg").is_file()
    assert len(list(icons.glob("*/apps/polyphone.*"))) == 10
    out = run(tmp_path, "uninstall")
    assert out.returncode == 0 and "Removed 11 files" in out.stdout, out.stdout + out.stderr
    assert not entry.exists() and not list(icons.glob("*/apps/polyphone.*"))
    assert "was not in the menu" in run(tmp_path, "uninstall").stdout


@pytest.mark.parametrize("arg, quoted", [
    ("/opt/Polyphone/polyphone", "/opt/Polyphone/polyphone"),
    ("/home/a b/polyphone", '"/home/a b/polyphone"'),
    ('/x/"$HOME`', '"/x/\\\\"\\\\$HOME\\\\`"'),
])
def test_exec_quoting_follows_the_desktop_entry_spec(arg: str, quoted: str) -> None:
    assert desktop.exec_quote(arg) == quoted


def test_exec_points_at_a_path_with_spaces(tmp_path) -> None:
    text = desktop.entry_text(["/home/a b/Polyphone/polyphone"])
    assert 'Exec="/home/a b/Polyphone/polyphone"' in text
    assert "TryExec=/home/a b/Polyphone/polyphone" in text
