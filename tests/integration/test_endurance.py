"""Twenty calls back to back in one process leave nothing behind.

Client and gateway both live in this process (the real local gateway, real aiortc
peers on loopback), so a leak on either side shows. The baseline is taken after a
warm-up call: aiortc, PyAV and the default executor start their pools once.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading

import numpy as np
import pytest

from helpers.waits import until
from polyphone.audio.files import MemorySink, PacedSource, tone
from polyphone.engine.call import Call
from polyphone.engine.request import CallRequest

TOKEN = "endurance-token-7c21d9"
CALLS = 20
pytestmark = pytest.mark.integration


def counts() -> dict[str, int]:
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed while we looked (the listdir's own fd)
            pass
    return {"tasks": len(asyncio.all_tasks()), "threads": threading.active_count(),
            "fds": len(fds), "sockets": sockets}


async def settled() -> dict[str, int]:
    """Counts once they stop falling (closing transports finish on later loop turns)."""
    last = None
    for _ in range(40):  # at most ~4 s
        gc.collect()
        await asyncio.sleep(0.1)
        now = counts()
        if now == last:
            break
        last = now
    assert last is not None
    return last


async def one_call(url: str) -> None:
    sink = MemorySink()
    request = CallRequest(url=url, token=TOKEN, mode="echo", fetch_ice_servers=False)
    call = Call(request, PacedSource(tone(seconds=1.0)), sink, lambda _e: None)
    task = asyncio.ensure_future(call.run())
    await until(lambda: task.done() or sink.frames > 25, 10, 0.05, error=None)  # audio came back
    await call.hangup()
    result = await asyncio.wait_for(task, 10)
    assert result.ok, result.error
    assert np.abs(sink.samples).max() > 1000  # the tone came back


async def test_twenty_calls_back_to_back_leak_no_tasks_threads_sockets_or_fds(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    await one_call(gw.url)  # warm-up: pools and caches start here, once
    before = await settled()
    for _ in range(CALLS):
        await one_call(gw.url)
    after = await settled()
    print(json.dumps({"calls": CALLS, "after_warm_up": before, "after_calls": after,
                      "gateway_sessions_left": len(gw.sessions)}))
    assert not gw.sessions
    for what in ("tasks", "threads", "sockets", "fds"):
        assert after[what] <= before[what], (what, before, after)
