"""The scripted caller's voice and the agent's ear: the two tracks a scripted run plugs into a Call.

`ScriptedSource` is the caller's microphone: 20 ms frames paced in real time
(`PacedSource`), silence until `say(pcm)` queues an utterance. It dates the
first and the last loud frame of each utterance at the moment the frame goes to
the encoder, which is where a real microphone's audio would enter the call.
`AgentSink` reads the agent's audio as it arrives (decoded, before any speaker),
dating each frame on arrival. Both hand every frame to a callback.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable

import numpy as np
from av import AudioFrame

from ..audio.analysis import level_dbfs
from ..audio.files import FRAME_SAMPLES, FrameConsumer, PacedSource, frame_to_mono

LOUD_DBFS = -40.0   # the voice-activity threshold used on both sides

FrameCallback = Callable[[np.ndarray, float], None]


class Utterance:
    def __init__(self, pcm: np.ndarray) -> None:
        self.pcm = np.asarray(pcm, np.int16)
        self.pos = 0
        self.first_loud: float | None = None
        self.loud_end: float | None = None
        self.done: asyncio.Future[tuple[float | None, float | None]] = \
            asyncio.get_running_loop().create_future()


class ScriptedSource(PacedSource):
    def __init__(self, on_frame: FrameCallback) -> None:
        super().__init__(None)
        self._on_frame = on_frame
        self._queue: collections.deque[Utterance] = collections.deque()

    def say(self, pcm: np.ndarray) -> asyncio.Future[tuple[float | None, float | None]]:
        """Queue an utterance; the future gives (first loud frame, end of the last loud frame),
        monotonic times, once its last frame has gone to the encoder."""
        utterance = Utterance(pcm)
        self._queue.append(utterance)
        return utterance.done

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    @property
    def finished(self) -> bool:
        return False

    def _next_chunk(self) -> np.ndarray:
        now = time.monotonic()
        chunk = np.zeros(FRAME_SAMPLES, np.int16)
        if self._queue:
            u = self._queue[0]
            part = u.pcm[u.pos:u.pos + FRAME_SAMPLES]
            chunk[:len(part)] = part
            u.pos += FRAME_SAMPLES
            if len(part) and level_dbfs(part) >= LOUD_DBFS:
                u.first_loud = now if u.first_loud is None else u.first_loud
                u.loud_end = now + FRAME_SAMPLES / 48_000
            if u.pos >= len(u.pcm):
                self._queue.popleft()
                if not u.done.done():
                    u.done.set_result((u.first_loud, u.loud_end))
        self._on_frame(chunk, now)
        return chunk

    def stop(self) -> None:
        for u in self._queue:  # a call that ends mid-utterance: the step is over
            if not u.done.done():
                u.done.set_result((u.first_loud, u.loud_end))
        self._queue.clear()
        super().stop()


class AgentSink(FrameConsumer):
    def __init__(self, on_frame: FrameCallback) -> None:
        super().__init__()
        self._on_frame = on_frame

    def on_frame(self, frame: AudioFrame) -> None:
        self._on_frame(frame_to_mono(frame), time.monotonic())
