"""What each side of a call said, offline: one interface over the speech recognisers.

A `Recognizer` turns one phrase of 16 kHz audio into words; `make_recognizer` picks the engine
(pocketsphinx, the default; or a Whisper model through faster-whisper, speech/whisper.py). A
recogniser may also take a phrase while it is spoken (`stream()`, speech/stream.py), so that
little is left to do when it ends. Cutting audio into phrases is speech/phrases.py; both sides
of a call live, speech/live_transcriber.py.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import numpy as np
import soxr

from ..errors import UserFacingError

SIDES = ("caller", "agent")
FEED_RATE = 48_000            # what LiveTranscriber.feed takes

ENGINES = {"pocketsphinx": (".sphinx", "SphinxRecognizer"), "whisper": (".whisper", "WhisperRecognizer")}
"""Engine name -> (module in this package, class); imported only when asked for. A class that
takes a `model` argument (whisper: a model's name or folder) gets make_recognizer's."""


@dataclass(frozen=True)
class Utterance:
    """One phrase of one side: `start`/`end` on the clock of the audio fed (monotonic seconds)."""

    who: str          # "caller" or "agent"
    start: float
    end: float
    text: str
    final: bool = True


def transcript_rows(utterances: Iterable[Any], t0: float) -> list[dict[str, Any]]:
    """Utterances (anything with who, start, end, text) as report rows, times in ms since `t0`:
    the one shape of a transcript in reports, the history and `polyphone call --json`."""
    return [{"who": u.who, "start_ms": round(1000 * (u.start - t0)), "end_ms": round(1000 * (u.end - t0)),
             "text": u.text} for u in utterances]


class Recognizer(Protocol):
    """A speech recogniser: whole phrases in, words out."""

    name: str          # "pocketsphinx"
    label: str         # for people: "pocketsphinx (offline, lower accuracy)"
    sample_rate: int   # what `transcribe` takes, e.g. 16000

    def transcribe(self, pcm16k: np.ndarray) -> str:
        """The words in one phrase (int16 mono at `sample_rate`); blocking, thread-safe."""
        ...


class TranscriptionError(UserFacingError):
    """Speech could not be recognised: an unknown engine, or one that cannot be loaded."""


def make_recognizer(engine: str = "pocketsphinx", model: str | None = None) -> Recognizer:
    """A ready recogniser of `engine` (one of ENGINES), with `model` if given (for an engine that
    takes one); TranscriptionError when there is none.

    Loading a model takes a while (pocketsphinx ~0.5 s): do it off the audio path, keep it.
    """
    key = engine.strip().lower() if isinstance(engine, str) else ""
    if key not in ENGINES:
        raise TranscriptionError(f'There is no speech recogniser called "{engine}".',
                                 f"Use one of: {', '.join(ENGINES)}.")
    module_name, class_name = ENGINES[key]
    try:
        factory = getattr(importlib.import_module(module_name, __package__), class_name)
    except ImportError as exc:
        raise TranscriptionError(f"The speech recogniser {key} is not installed ({exc}).",
                                 "Reinstall Polyphone.") from exc
    if model is None:
        return factory()
    if "model" not in inspect.signature(factory).parameters:
        raise TranscriptionError(f"The speech recogniser {key} has no choice of model.",
                                 f"Leave the model out, or use {', '.join(ENGINES)}.")
    return factory(model=model)


def _resample(pcm: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    if rate == to_rate or not pcm.size:
        return pcm
    return soxr.resample(pcm, rate, to_rate)


