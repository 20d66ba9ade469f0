"""Offline recognition with pocketsphinx and the US English model its wheel ships (no download).

Lower accuracy than a Whisper model, and labelled so. What shapes the decoding here, measured
on espeak-ng speech (tests/unit/test_transcribe.py; word error rates over 20 phrases):

- Its cepstral mean normalisation starts from a mean for speech at about -40 dBFS and adapts
  slowly, so the first phrases at another level, and a side louder than the other, were
  mostly lost (WER 0.48 for a fresh decoder). Every phrase is brought to -20 dBFS, and the
  mean starts where speech at that level puts it (WER 0.15-0.3 for a fresh decoder).
- Digital silence (synthetic speech; a line with DTX) throws the same normalisation off
  (WER 0.6-0.8): a faint seeded noise, 25 dB under the speech, is added, with 250 ms of it
  on either side of the phrase (the decoder wants some silence around the words). The same
  audio gives the same text.
- The decoder holds the GIL for as long as one call into it lasts: a whole 9 s phrase in one
  `process_raw` stalled every other Python thread for 7.8 s. Audio goes in 20 ms at a time
  (a call lasts a few ms, rarely 30), with a 0.5 ms pause after each when the process has
  other threads, so a thread waiting for the GIL gets it when the call ends rather than a
  5 ms switch interval later (feed calls of a thread feeding frames in real time: p99 0.3 ms
  instead of 14 ms). A thread that wakes up still waits for the call under way (p99 ~25 ms):
  the app runs the decoder in a process of its own (speech/remote.py); this is for in-process
  use (tests, the self-test, whole recordings).
- The second "flat" search pass, inside `end_utt` (~200 ms with the GIL held), did not
  improve accuracy here; it is off, which also makes decoding ~30 % faster.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .transcribe import TranscriptionError

SAMPLE_RATE = 16_000
CHUNK_SAMPLES = 320          # 20 ms per call into the decoder: bounds how long it holds the GIL
YIELD_S = 0.0005             # and a pause after each, so a thread waiting for the GIL gets it now
PAD_S = 0.25                 # silence (then noise) added either side: the decoder wants some
NOISE_FLOOR_DB = 25.0        # the added noise sits this far under the phrase's RMS level
LEVEL_DBFS = -20.0           # every phrase is brought to this RMS level...
MAX_GAIN_DB = 30.0
CMN_INIT = "62,3,-1"         # ...where speech's mean c0 is ~62 (the model's default, 40, is -40 dBFS)
SPEECH_RANGE_DB = 20.0       # the level of a phrase: its 20 ms blocks this close to the loudest
HOLD_S = 0.6                 # a stream's first audio, held back to set its gain
_REINSTALL = "Reinstall Polyphone (or run `pip install --force-reinstall pocketsphinx`)."


def _decoder_options() -> dict:
    return {"samprate": SAMPLE_RATE, "loglevel": "FATAL", "fwdflat": False, "cmninit": CMN_INIT}


def speech_rms(pcm: np.ndarray) -> float:
    """The RMS level of the speech in `pcm`: over its 20 ms blocks within SPEECH_RANGE_DB of the
    loudest (the pauses and the silence around the words left out); 0.0 for silence."""
    x = pcm.astype(np.float64)
    n = x.size // CHUNK_SAMPLES * CHUNK_SAMPLES
    if n == 0:
        return float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    power = np.mean(x[:n].reshape(-1, CHUNK_SAMPLES) ** 2, axis=1)
    loud = power[power >= power.max() * 10 ** (-SPEECH_RANGE_DB / 10)]
    return float(np.sqrt(loud.mean())) if loud.size and loud.max() > 0 else 0.0


class _Conditioner:
    """A phrase brought to LEVEL_DBFS (the gain from `rms`, by at most MAX_GAIN_DB), with seeded
    white noise NOISE_FLOOR_DB under that level throughout, so that digital silence becomes a
    faint hiss, the way a real line sounds; `pad()` is PAD_S of that hiss alone."""

    def __init__(self, rms: float, seed: int) -> None:
        self.gain = min(10 ** (MAX_GAIN_DB / 20.0), 32768.0 * 10 ** (LEVEL_DBFS / 20.0) / rms)
        self.noise = rms * self.gain * 10 ** (-NOISE_FLOOR_DB / 20.0)
        self._rng = np.random.default_rng(seed)

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        x = pcm.astype(np.float64) * self.gain + self._rng.normal(0.0, self.noise, pcm.size)
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)

    def pad(self) -> np.ndarray:
        return self(np.zeros(round(PAD_S * SAMPLE_RATE), np.int16))


class _SphinxStream:
    """One phrase decoded as it comes (speech/stream.py). The first HOLD_S is kept back to set
    the phrase's gain from its level; from then on every piece is decoded when it arrives.
    Holds the recogniser's lock from the first `feed` to `finish` or `abandon`."""

    def __init__(self, recognizer: "SphinxRecognizer") -> None:
        self._r = recognizer
        self._held: list[np.ndarray] = []
        self._held_samples = 0
        self._condition: _Conditioner | None = None
        self._locked = False
        self._done = False

    def feed(self, pcm16k: np.ndarray) -> None:
        pcm = np.asarray(pcm16k)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise ValueError("a stream takes one-dimensional int16 samples")
        if self._done or not pcm.size:
            return
        if self._condition is not None:
            self._r._decode(self._condition(pcm))
            return
        self._held.append(pcm)
        self._held_samples += pcm.size
        if self._held_samples >= HOLD_S * SAMPLE_RATE:
            self._begin()

    def _begin(self) -> bool:
        """Start decoding what is held, if it holds any sound; True when decoding."""
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.int16)
        rms = speech_rms(held)
        if rms <= 0.0:
            return False
        if not self._locked:
            self._r._lock.acquire()
            self._locked = True
        self._condition = _Conditioner(rms, held.size)
        self._held, self._held_samples = [], 0
        self._r._decoder.start_utt()
        self._r._decode(self._condition.pad())
        self._r._decode(self._condition(held))
        return True

    def partial(self) -> str:
        if self._condition is None or self._done:
            return ""
        hyp = self._r._decoder.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None else ""

    def finish(self) -> str:
        if self._done:
            return ""
        try:
            if self._condition is None:
                if self._held_samples < CHUNK_SAMPLES or not self._begin():
                    return ""
            assert self._condition is not None
            self._r._decode(self._condition.pad())
            self._r._decoder.end_utt()
            hyp = self._r._decoder.hyp()
            return " ".join(hyp.hypstr.split()) if hyp is not None else ""
        finally:
            self._end()

    def abandon(self) -> None:
        if self._done:
            return
        try:
            if self._condition is not None:
                self._r._decoder.end_utt()
        finally:
            self._end()

    def _end(self) -> None:
        self._done = True
        self._held = []
        if self._locked:
            self._locked = False
            self._r._lock.release()


class SphinxRecognizer:
    """One pocketsphinx decoder with the packaged en-us model; `transcribe` is thread-safe.

    Loading the model takes ~0.5 s (with the GIL held): make one off the audio path and keep it.
    Raises TranscriptionError when pocketsphinx or its model cannot be loaded.
    """

    name = "pocketsphinx"
    label = "pocketsphinx (offline, lower accuracy)"
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        try:
            import pocketsphinx

            self._decoder = pocketsphinx.Decoder(**_decoder_options())
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"The speech recogniser {self.name} could not be loaded: {exc}.",
                                     _REINSTALL) from exc
        self._lock = threading.Lock()

    def stream(self) -> _SphinxStream:
        """A phrase decoded while it is spoken (speech/stream.py); one at a time per recogniser."""
        return _SphinxStream(self)

    def transcribe(self, pcm16k: np.ndarray) -> str:
        """The words in one phrase (int16 mono at 16 kHz), lower case; "" when none were heard."""
        pcm = np.asarray(pcm16k)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise ValueError("transcribe takes one-dimensional int16 samples")
        if pcm.size < CHUNK_SAMPLES or not pcm.any():
            return ""
        stream = self.stream()
        stream._held, stream._held_samples = [pcm], pcm.size   # the whole phrase sets the gain
        return stream.finish()

    def _decode(self, audio: np.ndarray) -> None:
        """Into the decoder CHUNK_SAMPLES at a time (the caller holds the lock, in an utterance)."""
        for i in range(0, audio.size, CHUNK_SAMPLES):
            self._decoder.process_raw(audio[i:i + CHUNK_SAMPLES].tobytes(), full_utt=False)
            if threading.active_count() > 1:   # someone to let run (not in speech/worker.py)
                time.sleep(YIELD_S)
