"""`polyphone ARGS` in a subprocess, as a user runs it, on private config and data folders."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def run_polyphone(*args: str, tmp: Path, token: str | None, timeout: float = 60,
                        env: dict[str, str] | None = None, base_env: dict[str, str] | None = None,
                        prelude: str = "", wrapper: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """(exit code, stdout, stderr). The token, if any, travels in POLYPHONE_TOKEN, never in argv.
    `env` adds variables to `base_env` (default: this process's); `prelude` is Python run first
    in the child (then `polyphone ARGS` runs in that same process); `wrapper` is a command the
    child runs under (e.g. `ip netns exec NS`)."""
    full = dict(base_env if base_env is not None else os.environ, POLYPHONE_CONFIG_DIR=str(tmp / "config"),
                POLYPHONE_DATA_DIR=str(tmp / "data"),
                PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", **(env or {}))
    full.pop("POLYPHONE_TOKEN", None)
    if token is not None:
        full["POLYPHONE_TOKEN"] = token
    launch = ["-c", f"{prelude}\nimport sys\nfrom polyphone.__main__ import main\nsys.exit(main())"] \
        if prelude else ["-m", "polyphone"]
    proc = await asyncio.create_subprocess_exec(
        *wrapper, sys.executable, *launch, *args, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()
