"""One asyncio loop in a native thread per Locust worker process, awaited from Locust's greenlets.

Locust is gevent: its users are greenlets of one hub in the main thread. Polyphone's engine is
asyncio, and its calls need the loop to keep the 20 ms pace of their audio. So each worker
process hosts one asyncio loop in an OS thread of its own (`CallLoop`); a user hands it a call
(`run(coro)`) and waits for the result without blocking the other greenlets: the loop's
thread wakes the waiting greenlet through one of gevent's async watchers (libev's
ev_async_send, the one call gevent's loop takes from any thread; setting an `AsyncResult`
from another thread failed with gevent 25.5 in get_roots_and_hubs).

Measured (locust 2.47, gevent 26, this machine): in a process gevent has monkey-patched,
asyncio's executors and `to_thread` turn into greenlets of the loop's own thread (four 0.3 s
jobs ran one after another and the loop did not tick for 1.2 s), and asyncio subprocesses fail;
aiortc encodes in an executor and decodes in a thread. So `polyphone load` starts its workers
with LOCUST_SKIP_MONKEY_PATCH=1 (load/users.py refuses to run calls in a patched process); the
master, which places no calls, stays patched as Locust needs.

The loop starts on first use, not at import: `locust --processes` imports the locustfile and
then forks, and a thread does not survive a fork.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import gevent
import gevent.event
import gevent.lock

START_TIMEOUT_S = 10.0


class _Handoff:
    """A result made in another thread, awaited by a greenlet (of the hub that made it)."""

    def __init__(self) -> None:
        self._watcher = gevent.get_hub().loop.async_()
        self._arrived = gevent.event.Event()
        self._watcher.start(self._arrived.set)      # runs in the hub's thread
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None, error: BaseException | None = None) -> None:   # any thread
        self._value, self._error = value, error
        self._watcher.send()

    def get(self, timeout: float | None = None) -> Any:
        try:
            if not self._arrived.wait(timeout):
                raise gevent.Timeout(timeout)
        finally:
            self._watcher.close()
        if self._error is not None:
            raise self._error
        return self._value


class CallLoop:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: _Handoff | None = None
        self._starting = gevent.lock.Semaphore()
        self._stopped = threading.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use (from a greenlet of the main thread)."""
        with self._starting:
            if self._loop is None:
                self._started = _Handoff()
                threading.Thread(target=self._serve, name="polyphone-calls", daemon=True).start()
                self._loop = self._started.get(timeout=START_TIMEOUT_S)
        return self._loop

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        assert self._started is not None
        loop.call_soon(self._started.set, loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            self._stopped.set()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """`coro`'s result, run on the loop; blocks only this greenlet. A timeout (TimeoutError),
        or this greenlet being killed (Locust stopping a user), cancels the task."""
        loop, result, box = self.loop, _Handoff(), {}

        def done(task: asyncio.Task) -> None:
            if task.cancelled():
                result.set(error=asyncio.CancelledError())
            elif task.exception() is not None:
                result.set(error=task.exception())
            else:
                result.set(task.result())

        def start() -> None:
            box["task"] = task = loop.create_task(coro)
            task.add_done_callback(done)

        loop.call_soon_threadsafe(start)
        try:
            return result.get(timeout=timeout)
        except BaseException as exc:
            loop.call_soon_threadsafe(lambda: box.get("task") and box["task"].cancel())
            if isinstance(exc, gevent.Timeout):
                raise TimeoutError(f"no result within {timeout} s") from None
            raise

    def call_soon(self, fn: Any, *args: Any) -> None:
        """`fn(*args)` on the loop's thread, not waiting for it."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what still runs, stop the loop and wait for its thread (Locust quitting)."""
        if self._loop is None:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), timeout=timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._stopped.wait(timeout)
