"""Waiting for a condition in tests: the one polling loop, blocking and async.

`wait_until(predicate, timeout, interval, what)` calls `predicate()` every `interval`
seconds until it returns something true and returns that value; after `timeout` seconds
it raises `error` (AssertionError unless told): "timed out after T s waiting for WHAT",
or with `error=None` returns the last (false) value, for a wait that may run out.
`what` may be a callable, to put figures read at the time of the failure in the message.
A predicate may raise to give up early (a process that exited, say); that propagates.

`until(...)` is the same for a running event loop: it sleeps with `asyncio.sleep`, so the
loop (and Qt, under qasync) keeps running, and the predicate may be a coroutine function.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def _timed_out(value: Any, timeout: float, what: str | Callable[[], str] | None,
               predicate: Callable[[], Any], error: type[Exception] | None) -> Any:
    if error is None:
        return value
    if what is None:
        what = repr(predicate)
    elif callable(what):
        what = what()
    raise error(f"timed out after {timeout:g} s waiting for {what}")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               what: str | Callable[[], str] | None = None, *,
               error: type[Exception] | None = AssertionError) -> T:
    """Poll `predicate` (blocking) until it returns a true value, and return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return _timed_out(value, timeout, what, predicate, error)
        time.sleep(interval)


async def until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
                what: str | Callable[[], str] | None = None, *,
                error: type[Exception] | None = AssertionError) -> Any:
    """Poll `predicate` (a function or a coroutine function) until it returns a true value,
    letting the event loop run in between; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            return _timed_out(value, timeout, what, predicate, error)
        await asyncio.sleep(interval)
