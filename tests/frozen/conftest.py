"""The frozen app, built once per session by build/package.sh (skipped when dist/ already
holds a build of these very sources), for the tests in this folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 900


@pytest.fixture(scope="session")
def frozen_app() -> Path:
    """The frozen app's executable (dist/Polyphone/polyphone)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the frozen-app tests build the Linux bundle")
    out = subprocess.run([str(ROOT / "build" / "package.sh"), "--if-changed"], cwd=ROOT,
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert out.returncode == 0, f"build/package.sh failed:\n{out.stderr[-4000:]}"
    exe = ROOT / "dist" / "Polyphone" / "polyphone"
    assert exe.is_file(), out.stderr
    return exe
