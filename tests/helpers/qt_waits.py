"""Helpers shared by the GUI tests: waiting on the running loop, recording bridge signals."""

from __future__ import annotations

import asyncio

from polyphone.gui.bridge import EngineBridge


async def until(predicate, timeout: float = 10.0, step: float = 0.02) -> None:
    """Wait (letting Qt and asyncio run) until predicate() is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        await asyncio.sleep(step)


class Recorder:
    """Every signal of a bridge, as (name, args) in order."""

    def __init__(self, bridge: EngineBridge) -> None:
        self.seen: list[tuple[str, tuple]] = []
        for name in ("state_changed", "connection_changed", "session_started", "pair_selected",
                     "stats_sampled", "call_error", "log_line", "levels", "turn_latency",
                     "busy_changed", "call_finished", "notice", "media_stalled", "media_resumed",
                     "audio_stats", "device_changed", "devices_listed", "check_finished",
                     "keyring_status"):
            getattr(bridge, name).connect(lambda *a, _n=name: self.seen.append((_n, a)))

    def of(self, name: str) -> list[tuple]:
        return [a for n, a in self.seen if n == name]

    def states(self) -> list[str]:
        return [a[0] for a in self.of("state_changed")]
