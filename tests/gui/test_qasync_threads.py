"""Regression: PySide6 6.12.0 + qasync crashed ("Fatal Python error:
bool_dealloc") when a plain thread called `loop.call_soon_threadsafe` many times -- what
PortAudio callbacks and aiortc's codec threads do during every call. Each check runs in a
fresh interpreter, so a crash fails that one test instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import asyncio, os, sys, threading
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication
    import PySide6, qasync

    N, THREADS = int(sys.argv[1]), int(sys.argv[2])
    app = QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    got = []

    async def main():
        done = loop.create_future()

        def arrived(i, payload):
            got.append(i)
            if len(got) == N * THREADS and not done.done():
                done.set_result(None)

        def flood(k):
            for i in range(N):  # the shape of aiortc's decoder thread: a callback + an object
                loop.call_soon_threadsafe(arrived, k * N + i, {"frame": i, "ok": True})

        threads = [threading.Thread(target=flood, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        await asyncio.wait_for(done, 90)
        for t in threads:
            t.join()

    loop.run_until_complete(main())
    assert sorted(got) == list(range(N * THREADS))
    print("OK", len(got), "PySide6", PySide6.__version__)
''')


@pytest.mark.parametrize("calls, threads", [(20_000, 1), (5_000, 4)])
def test_many_call_soon_threadsafe_from_plain_threads_do_not_crash(calls, threads) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(calls), str(threads)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith(f"OK {calls * threads} "), proc.stdout
