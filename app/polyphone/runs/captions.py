"""A run's transcript: both sides recognised as the call goes, off the event loop.

The recogniser's process (speech/remote.py) is started before the call; frames are handed to
`speech.transcribe.LiveTranscriber`, which segments each side and recognises finished
phrases in its own thread. Each utterance is shown live (`events.Said`, moved onto the
loop) and kept; `finish()` flushes the last phrase and returns the transcript in report
form, times in ms since the call connected.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import numpy as np

from .events import Said

FINISH_TIMEOUT_S = 20.0


class RunCaptions:
    def __init__(self, emit: Callable[[object], None], origin: Callable[[], float | None],
                 engine: str = "pocketsphinx") -> None:
        self._emit, self._origin, self._engine = emit, origin, engine
        self._live: Any = None
        self._recognizer: Any = None
        self._label: str | None = None
        self._said: list[Any] = []          # speech.transcribe.Utterance, appended by the worker
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.problem: str | None = None

    async def start(self) -> None:
        """Loads the recogniser (a worker thread); a failure leaves the run without a transcript."""
        from ..speech.remote import RemoteRecognizer
        from ..speech.transcribe import LiveTranscriber, TranscriptionError

        self._loop = asyncio.get_running_loop()
        try:
            recognizer = await asyncio.to_thread(RemoteRecognizer, self._engine)
        except TranscriptionError as exc:
            self.problem = str(exc)
            return
        self._label, self._recognizer = recognizer.label, recognizer
        self._live = LiveTranscriber(recognizer, self._on_utterance)

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
        await asyncio.to_thread(self._live.close, FINISH_TIMEOUT_S)
        await asyncio.to_thread(self._recognizer.close)
        t0 = self._origin()
        with self._lock:
            said = sorted(self._said, key=lambda u: u.start)
        if t0 is None:
            return [], self._label
        return [{"who": u.who, "start_ms": round(1000 * (u.start - t0)), "end_ms": round(1000 * (u.end - t0)),
                 "text": u.text} for u in said], self._label
