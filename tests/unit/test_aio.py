"""Small asyncio helpers: cancelling a task that does not want to stop."""

from __future__ import annotations

import asyncio
import time

from polyphone.aio import cancel_and_wait


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    """Python 3.11's wait_for can swallow a cancel; a stop must not then hang forever."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    t0 = time.monotonic()
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert task.cancelled() and swallowed == 2 and time.monotonic() - t0 < 1.5
