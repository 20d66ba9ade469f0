"""Named one-shot timers on the running asyncio loop (connect, answer, grace, ...)."""

from __future__ import annotations

import asyncio
from typing import Callable


class Timers:
    def __init__(self) -> None:
        self._handles: dict[str, asyncio.TimerHandle] = {}

    def start(self, name: str, seconds: float, callback: Callable[[], None]) -> None:
        """(Re)start `name`; `callback` runs once when it fires."""
        self.cancel(name)

        def fire() -> None:
            self._handles.pop(name, None)
            callback()

        self._handles[name] = asyncio.get_running_loop().call_later(seconds, fire)

    def cancel(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def running(self, name: str) -> bool:
        return name in self._handles

    def cancel_all(self) -> None:
        for name in list(self._handles):
            self.cancel(name)
