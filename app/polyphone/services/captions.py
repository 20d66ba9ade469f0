"""Live captions of a call: both sides recognised off the event loop, shown as they finish.

speech.live.DuplexCaptions does the work: a recogniser process per side (loading and
decoding hold the GIL — pocketsphinx's model took ~450 ms of the loop in-process), started
on the first call without delaying it and kept for the next ones; `close()` ends them. During
a call the microphone's frames (after echo cancellation: what the agent hears) and the
agent's decoded frames reach it through the audio's frame hooks. Each utterance goes to
`emit` as an `app_events.Caption` (the phone moves it onto the loop) and into `transcript`;
the recogniser's label, or why there are no captions, as a `CaptionsStatus`.

The recogniser (pocketsphinx, or Whisper with a model) is the one `configure` last chose; a
new choice ends the running recognisers, and the next `start()` uses it. A choice that cannot
work now (a Whisper model not pulled) is said as a `CaptionsStatus` problem by `start()`,
without starting anything.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from . import speech_models
from .app_events import Caption, CaptionsStatus


class LiveCaptions:
    def __init__(self, emit: Callable[[Any], None], engine: str = "pocketsphinx",
                 model: str | None = None) -> None:
        self._emit = emit
        self.engine, self.model = engine, speech_models.model_for(engine, model)
        self._duplex: Any = None
        self._lock = threading.Lock()
        self.transcript: list[Caption] = []

    @property
    def running(self) -> bool:
        return self._duplex is not None and self._duplex.running

    async def start(self, media: Any) -> None:
        """Caption `media`'s call (its `source` and `sink` frame hooks); never raises."""
        if self.running:
            return
        try:
            problem = await asyncio.to_thread(speech_models.validate, self.engine, self.model)
            if problem is not None:   # a Whisper model not pulled, say: nothing is started
                self._emit(CaptionsStatus("", str(problem)))
                return
            if self._duplex is None:
                from ..speech.live import DuplexCaptions

                self._duplex = DuplexCaptions(self._on_utterance, self._on_status, self.engine, self.model)
            duplex = self._duplex
            await asyncio.to_thread(duplex.start)   # two process spawns: a few ms
        except Exception as exc:
            self._emit(CaptionsStatus("", f"Captions could not start: {exc}"))
            return
        duplex.attach(media.source, media.sink)

    async def configure(self, engine: str, model: str | None = None) -> bool:
        """Caption with `engine` (and, for Whisper, `model`) from the next start(). True when that
        changed: the running recognisers have ended then (a call's captions stop until start())."""
        model = speech_models.model_for(engine, model)
        if (engine, model) == (self.engine, self.model):
            return False
        self.engine, self.model = engine, model
        duplex, self._duplex = self._duplex, None   # a start() from now makes new ones
        if duplex is not None:
            await asyncio.to_thread(duplex.close)   # stop listening, end the processes
        return True

    async def stop(self) -> list[Caption]:
        """Stop listening, finish the phrases under way (off the loop); the transcript."""
        if self._duplex is not None:
            await asyncio.to_thread(self._duplex.stop)
        with self._lock:
            return list(self.transcript)

    async def close(self) -> list[Caption]:
        """Stop captioning and end the recognisers' processes; the transcript. Idempotent."""
        transcript = await self.stop()
        duplex, self._duplex = self._duplex, None
        if duplex is not None:
            await asyncio.to_thread(duplex.close)
        return transcript

    def reset(self) -> None:
        with self._lock:
            self.transcript = []

    def _on_status(self, label: str, problem: str) -> None:   # a worker thread
        self._emit(CaptionsStatus(label, problem))

    def _on_utterance(self, u: Any) -> None:   # a recogniser's thread
        caption = Caption(u.who, u.start, u.end, u.text, u.final)
        if u.final and u.text.strip():
            with self._lock:
                self.transcript.append(caption)
        self._emit(caption)
