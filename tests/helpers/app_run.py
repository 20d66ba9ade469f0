"""Running an installed Polyphone (source, wheel or frozen) as a person would, in tests.

`app_env(tmp)` is an environment with private config and data folders and no token;
`self_test_lines(stdout)` reads `polyphone --self-test` output into {check: (ok, text)}.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKS = ("resources", "qt", "audio", "processing", "speech", "keyring", "rtc", "call")


def app_env(tmp: Path, *parts: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for part in parts:
        env.update(part)
    env.update(POLYPHONE_CONFIG_DIR=str(tmp / "config"), POLYPHONE_DATA_DIR=str(tmp / "data"),
               PYTHONFAULTHANDLER="1", **extra)
    env.pop("POLYPHONE_TOKEN", None)
    return env


def self_test_lines(stdout: str) -> dict[str, tuple[bool, str]]:
    """{check name: (passed, the rest of its line)} for every PASS/WARN/FAIL line. A WARN (a
    library hook degraded, the app still works) counts as not passed here: the tests' own
    installs must have every hook in place."""
    out = {}
    for line in stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("PASS", "WARN", "FAIL"):
            name, _, text = rest.partition(": ")
            out[name] = (status == "PASS", text)
    return out
