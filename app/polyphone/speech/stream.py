"""A phrase given to a recogniser while it is spoken, so that little is left when it ends.

pocketsphinx decodes as the audio comes (speech/sphinx.py): at the end of a phrase only its last
step remains (~0.05 s instead of ~0.45 s per second of speech), and the words so far can be
asked for at any time (`partial`). A recogniser without a `stream()` of its own (a Whisper
model: it reads a phrase as a whole) gets `BufferedStream`, which keeps the audio and
recognises it at `finish`. Every stream is used by one thread, fed in order, and ended by
exactly one of `finish` or `abandon`; until then it may hold its recogniser (one phrase at a
time per recogniser).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PhraseStream(Protocol):
    def feed(self, pcm16k: np.ndarray) -> None:
        """More of the phrase (int16 mono at the recogniser's rate)."""
        ...

    def partial(self) -> str:
        """The words so far ("" when none, or when the recogniser cannot tell before the end)."""
        ...

    def finish(self) -> str:
        """The phrase is over: its words."""
        ...

    def abandon(self) -> None:
        """The phrase is not wanted after all (too short, dropped): free the recogniser."""
        ...


class BufferedStream:
    """The stream of a recogniser that only reads whole phrases: `transcribe` at the end."""

    def __init__(self, recognizer) -> None:
        self._recognizer = recognizer
        self._parts: list[np.ndarray] = []

    def feed(self, pcm16k: np.ndarray) -> None:
        self._parts.append(np.asarray(pcm16k, dtype=np.int16).reshape(-1))

    def partial(self) -> str:
        return ""

    def finish(self) -> str:
        pcm = np.concatenate(self._parts) if self._parts else np.zeros(0, np.int16)
        self._parts = []
        return self._recognizer.transcribe(pcm)

    def abandon(self) -> None:
        self._parts = []


def open_stream(recognizer) -> PhraseStream:
    """A stream for one phrase on `recognizer`: its own when it has one."""
    make = getattr(recognizer, "stream", None)
    return make() if callable(make) else BufferedStream(recognizer)
