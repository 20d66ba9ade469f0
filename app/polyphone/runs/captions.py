"""A run's transcript: both sides recognised as the call goes, off the event loop.

speech.live.DuplexCaptions starts a recogniser process per side when the run starts (they
load while the call is set up); frames are handed to it, and each side's finished phrases
are recognised in its own process. Each utterance is shown live (`events.Said`, moved onto the
loop) and kept; `finish()` flushes the last phrase and returns the transcript in report
form, times in ms since the call connected.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import numpy as np

from ..speech.transcribe import transcript_rows
from .events import Said

FINISH_TIMEOUT_S = 20.0


class RunCaptions:
    def __init__(self, emit: Callable[[object], None], origin: Callable[[], float | None],
                 engine: str = "pocketsphinx", model: str | None = None) -> None:
        self._emit, self._origin, self._engine, self._model = emit, origin, engine, model
        self._live: Any = None
        self._label: str | None = None
        self._said: list[Any] = []          # speech.transcribe.Utterance, appended by the worker
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.problem: str | None = None

    async def start(self) -> None:
        """Starts the recognisers (a few ms; they load in the background); never raises."""
        from ..speech.live import DuplexCaptions

        self._loop = asyncio.get_running_loop()
        live = DuplexCaptions(self._on_utterance, self._on_status, self._engine, self._model)
        try:
            await asyncio.to_thread(live.start)
        except Exception as exc:
            self.problem = f"Captions could not start: {exc}"
            return
        self._live = live

    def _on_status(self, label: str, problem: str) -> None:   # a worker thread
        self._label, self.problem = label or None, problem or None

    def feed(self, who: str, samples: np.ndarray, t: float) -> None:
        if self._live is not None:
            self._live.feed(who, samples, t)

    def _on_utterance(self, u: Any) -> None:   # the recogniser's thread
        if not u.final or not u.text.strip():
            return
        with self._lock:
            self._said.append(u)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._show, u)

    def _show(self, u: Any) -> None:
        t0 = self._origin()
        if t0 is not None:
            self._emit(Said(u.who, round(u.start - t0, 3), round(u.end - t0, 3), u.text))

    async def finish(self) -> tuple[list[dict[str, Any]] | None, str | None]:
        """(transcript, recogniser label); (None, None) when there was no recogniser."""
        if self._live is None:
            return None, None
        await asyncio.to_thread(self._live.stop, FINISH_TIMEOUT_S)
        await asyncio.to_thread(self._live.close)
        if self.problem and not self._label:
            return None, None     # the recogniser never loaded: no transcript, not an empty one
        t0 = self._origin()
        with self._lock:
            said = sorted(self._said, key=lambda u: u.start)
        label = self._label or self._engine
        if t0 is None:
            return [], label
        return transcript_rows(said, t0), label
