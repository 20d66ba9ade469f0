"""Offline recognition with a Whisper model through faster-whisper (CTranslate2): the quality engine.

The model comes from the model store (speech/models.py): a name pulled once
(`polyphone models pull base.en`) or a folder holding a faster-whisper model; it is never fetched
here, so a recogniser that cannot find its model says how to get it. Decoding is greedy (beam
size 1) on each phrase alone (no previous text as a prompt, no timestamps, no VAD of its own:
LiveTranscriber has already cut the phrase), in English for the `.en` models. CTranslate2
releases the GIL while it computes; the app still runs it in a process of its own
(speech/remote.py), as it does pocketsphinx.
"""

from __future__ import annotations

import threading

import numpy as np

from .models import CATALOGUE, DEFAULT_MODEL, ModelError, resolve
from .transcribe import TranscriptionError

SAMPLE_RATE = 16_000


class WhisperRecognizer:
    """One faster-whisper model on the CPU; `transcribe` is thread-safe (one phrase at a time).

    `model`: a model's name (one pulled into the cache) or a folder holding one; `compute_type`
    and `cpu_threads` as faster-whisper takes them. Raises TranscriptionError, saying what to
    do, when the model is not there or cannot be loaded.
    """

    name = "whisper"
    sample_rate = SAMPLE_RATE

    def __init__(self, model: str | None = None, compute_type: str = "int8", cpu_threads: int = 2) -> None:
        model = (model or DEFAULT_MODEL).strip()
        try:
            folder = resolve(model)
        except ModelError as exc:
            raise TranscriptionError(exc.message, exc.action) from None
        shown = model if model in CATALOGUE else folder.name
        self.label = f"Whisper {shown} (offline)"
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise TranscriptionError(f"The speech recogniser whisper is not installed ({exc}).",
                                     "Reinstall Polyphone.") from exc
        try:
            self._model = WhisperModel(str(folder), device="cpu", compute_type=compute_type,
                                       cpu_threads=cpu_threads, local_files_only=True)
        except Exception as exc:  # CTranslate2 and tokenizers raise RuntimeError, ValueError, OSError...
            fix = (f"Check it with `polyphone models verify {shown}`, or remove it and pull it again "
                   f"(`polyphone models remove {shown}`, `polyphone models pull {shown}`)."
                   if model in CATALOGUE else "Check that the folder holds a complete faster-whisper model.")
            raise TranscriptionError(f"The Whisper model {shown} could not be loaded "
                                     f"({type(exc).__name__}: {str(exc)[:200]}).", fix) from None
        english = shown.endswith(".en") or not self._model.model.is_multilingual
        self._language = "en" if english else None   # None: the model tells the language
        self._lock = threading.Lock()

    def transcribe(self, pcm16k: np.ndarray) -> str:
        """The words in one phrase (int16 mono at 16 kHz); "" when none were heard."""
        pcm = np.asarray(pcm16k)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise ValueError("transcribe takes one-dimensional int16 samples")
        if not pcm.any():
            return ""
        audio = pcm.astype(np.float32) / 32768.0
        with self._lock:   # the segments are decoded as they are read: all of it under the lock
            # temperature 0 alone: faster-whisper's fallback re-decodes a doubtful phrase at up
            # to six temperatures (measured: RTF 1.5 instead of 0.02-0.1 on the tiny test
            # model); captions need the words late-bound, not six times over.
            segments, _ = self._model.transcribe(
                audio, language=self._language, beam_size=1, vad_filter=False, temperature=0.0,
                condition_on_previous_text=False, without_timestamps=True)
            text = " ".join(segment.text for segment in segments)
        return " ".join(text.split())
