"""Live captions of a call: both sides recognised off the event loop, shown as they finish.

The recogniser runs in its own process (speech/remote.py: loading and decoding hold the GIL,
~450 ms for pocketsphinx's model, which would stall the loop), started the first time
captions are wanted and kept for later calls; `close()` ends it. During a call the microphone's
frames (after echo cancellation: what the agent hears) and the agent's decoded frames are
handed to a LiveTranscriber through the audio's frame hooks; it segments each side and
recognises finished phrases in its own thread. Each utterance goes to `emit` as an
`app_events.Caption` (the phone moves it onto the loop) and into `transcript`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any, Callable

from .app_events import Caption, CaptionsStatus

CLOSE_TIMEOUT_S = 5.0


class LiveCaptions:
    def __init__(self, emit: Callable[[Any], None], engine: str = "pocketsphinx") -> None:
        self._emit, self.engine = emit, engine
        self._recognizer: Any = None
        self._live: Any = None
        self._hooked: list[tuple[list, Callable]] = []
        self._lock = threading.Lock()
        self.transcript: list[Caption] = []

    @property
    def running(self) -> bool:
        return self._live is not None

    async def _load(self) -> Any:
        if self._recognizer is None:
            from ..speech.remote import RemoteRecognizer

            self._recognizer = await asyncio.to_thread(RemoteRecognizer, self.engine)
        return self._recognizer

    async def close(self) -> list[Caption]:
        """Stop captioning and end the recogniser's process; the transcript. Idempotent."""
        transcript = await self.stop()
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is not None:
            await asyncio.to_thread(recognizer.close)
        return transcript

    async def start(self, media: Any) -> None:
        """Caption `media`'s call (its `source` and `sink` frame hooks); never raises."""
        if self._live is not None:
            return
        from ..speech.transcribe import LiveTranscriber, TranscriptionError

        try:
            recognizer = await self._load()
        except TranscriptionError as exc:
            self._emit(CaptionsStatus("", f"{exc.message} {exc.action}".strip()))
            return
        self._live = live = LiveTranscriber(recognizer, self._on_utterance)
        for side, who in ((media.source, "caller"), (media.sink, "agent")):
            hooks = getattr(side, "hooks", None)
            if hooks is not None:
                hook = functools.partial(live.feed, who)
                hooks.append(hook)
                self._hooked.append((hooks, hook))
        self._emit(CaptionsStatus(recognizer.label))

    async def stop(self) -> list[Caption]:
        """Stop listening, finish the phrases under way (a worker thread); the transcript."""
        live, self._live = self._live, None
        for hooks, hook in self._hooked:
            if hook in hooks:
                hooks.remove(hook)
        self._hooked = []
        if live is not None:
            await asyncio.to_thread(live.close, CLOSE_TIMEOUT_S)
        with self._lock:
            return list(self.transcript)

    def reset(self) -> None:
        with self._lock:
            self.transcript = []

    def _on_utterance(self, u: Any) -> None:   # the recogniser's thread
        caption = Caption(u.who, u.start, u.end, u.text, u.final)
        if u.final and u.text.strip():
            with self._lock:
                self.transcript.append(caption)
        self._emit(caption)
