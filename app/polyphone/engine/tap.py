"""MediaTap: passes the remote audio track through and notes when frames arrive.

The call's RTP watchdog and the `first_audio` timing read it; the sink reads
the tap instead of the track.
"""

from __future__ import annotations

import time

from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame


class MediaTap(MediaStreamTrack):
    kind = "audio"

    def __init__(self, track: MediaStreamTrack) -> None:
        super().__init__()
        self._track = track
        self.frames = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    async def recv(self) -> AudioFrame:
        frame = await self._track.recv()
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.frames += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._track.stop()
