"""While a call is connected: statistics every second, the selected candidate pair, and liveness.

`MediaMonitor` owns no state of the call's: it reads the peer and the received audio's tap,
and hands what it finds to the call through `emit` and `log`. Its two loops run until the
call's teardown cancels them; `watch()` returns only when the media is lost for good.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from .events import Event, MediaStalled, SelectedPair, StatsSample
from .liveness import LOST, Liveness, describe
from .ports import PeerPort
from .request import Timeouts
from .tap import MediaTap


class MediaMonitor:
    def __init__(self, peer: PeerPort, timeouts: Timeouts, tap: Callable[[], MediaTap | None],
                 emit: Callable[[Event], None], log: Callable[[str, str, str], None]) -> None:
        self.peer, self.timeouts, self._tap = peer, timeouts, tap
        self._emit, self._log = emit, log
        self.connected_at = time.monotonic()
        self.pair: SelectedPair | None = None

    def report_pair(self) -> None:
        pair = self.peer.selected_pair()
        if pair is not None and pair != self.pair:
            if self.pair is None or (pair.local, pair.remote) != (self.pair.local, self.pair.remote):
                self.pair = pair
                self._emit(pair)

    async def stats(self, keep: Callable[[StatsSample], None]) -> None:
        while True:
            await asyncio.sleep(1.0)
            sample = await self.peer.stats()
            keep(sample)
            self._emit(sample)
            self.report_pair()

    async def watch(self, first_audio: Callable[[float], None]) -> None:
        """Says "silent", "media lost" and "back" as they happen; returns when the media has
        been lost for `timeouts.media_lost`. `first_audio(t)` gets the first frame's time."""
        t = self.timeouts
        live = Liveness(stall=t.media_stall, lost=t.media_lost, silent=t.agent_silent)
        first_seen = False
        while True:
            await asyncio.sleep(min(0.2, t.media_stall / 4))
            tap, now = self._tap(), time.monotonic()
            if not first_seen and tap is not None and tap.first_at is not None:
                first_seen = True
                first_audio(tap.first_at)
            rtp_at = tap.last_at if tap is not None and tap.last_at else self.connected_at
            update = live.update(now, rtp_at, self.peer.last_heard())
            if update == LOST:
                return
            for event in update:
                level = "warning" if isinstance(event, MediaStalled) else "info"
                self._log(level, "audio", describe(event, t.media_lost))
                self._emit(event)
