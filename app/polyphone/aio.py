"""Small asyncio helpers shared by the engine, the audio layer and the local gateway."""

from __future__ import annotations

import asyncio
import contextlib

RECANCEL_EVERY_S = 0.5


async def cancel_and_wait(task: asyncio.Future | None, *, quiet: bool = False) -> None:
    """Cancel `task` (if any and not done) and wait until it has finished.

    A task can swallow a cancellation: Python 3.11's `asyncio.wait_for` returns the result
    instead of raising when what it awaits finishes in the same moment as the cancel (a
    polling loop then sleeps on as if nothing happened). So the task is cancelled again every
    `RECANCEL_EVERY_S` until it has ended. Its own exception is raised here, or with `quiet`
    dropped (it was reported where it happened)."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_EVERY_S)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not quiet:
        raise exc


async def cancel_all(tasks) -> None:
    """`cancel_and_wait(quiet=True)` for each task, all cancelled at once first."""
    tasks = [t for t in tasks if t is not None]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(Exception):
            await cancel_and_wait(task, quiet=True)
