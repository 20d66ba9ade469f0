"""Stopping a child process the tests started: SIGTERM, a bounded wait, then SIGKILL.

`stop_process(proc, timeout)` for a `subprocess.Popen`, `stop_process_async(proc, timeout)`
for an `asyncio.subprocess.Process`. Both do nothing to a process that already exited,
and return its exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """Terminate `proc`, give it `timeout` s to exit, then kill it and wait `timeout` s more."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


async def stop_process_async(proc: asyncio.subprocess.Process, timeout: float = 5.0) -> int | None:
    """The same for an asyncio subprocess: terminate, wait `timeout` s, kill, wait."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), timeout)
    return proc.returncode
