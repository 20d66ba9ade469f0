"""What each side of a call said, offline: one interface over the speech recognisers.

A `Recognizer` turns one phrase of 16 kHz audio into words; `make_recognizer` picks the engine
(pocketsphinx, the default; or a Whisper model through faster-whisper, speech/whisper.py).
`LiveTranscriber` takes both sides' 20 ms frames during a call, cuts each side into phrases and
recognises them in one worker thread; `transcribe_pcm` does the same for a whole recording.

Phrases: an energy gate (`audio.analysis.VoiceActivity`) at -40 dBFS, or 10 dB over a steady
noise floor when the line is noisier than that (a hiss or a hum holds its level within a few dB
for half a second; speech never does), so background noise is not sent to the recogniser. A
phrase is speech whose pauses are at most 600 ms, with at least 200 ms of it over the gate, and
at most 15 s (longer speech is cut there and goes on in the next phrase). 200 ms of audio on
either side of the speech is kept, since recognisers want some silence around the words.
"""

from __future__ import annotations

import heapq
import importlib
import inspect
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import numpy as np
import soxr

from ..audio.analysis import SILENCE_FLOOR_DBFS, VoiceActivity
from ..errors import UserFacingError

log = logging.getLogger(__name__)

SIDES = ("caller", "agent")
FEED_RATE = 48_000            # what LiveTranscriber.feed takes
FRAME_S = 0.020               # the frame transcribe_pcm cuts a recording into
VAD_THRESHOLD_DBFS = -40.0    # the gate on a quiet line
NOISE_MARGIN_DB = 10.0        # on a noisy line, speech must be this far over the noise
STEADY_FRAMES = 25            # the level holding within STEADY_RANGE_DB this long is noise
STEADY_RANGE_DB = 4.0
PAUSE_MS = 450.0              # a longer pause ends the phrase (600 -> 450: caption lag -0.15 s)
MIN_SPEECH_S = 0.2            # shorter blips (clicks, a cough's edge) are not sent
MAX_PHRASE_S = 15.0
EDGE_S = 0.2                  # audio kept before and after the speech
MAX_PENDING_S = 30.0          # more audio than this waiting: the oldest phrases are dropped

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


# --- phrases ---------------------------------------------------------------------------


class _NoiseFloor:
    """The level of steady background noise, in dBFS, from one side's frame levels.

    It falls at once to any quieter frame, and moves up to the mean level wherever the level has
    stayed within STEADY_RANGE_DB for STEADY_FRAMES frames (a hiss, a hum; not speech).
    """

    def __init__(self) -> None:
        self.levels: deque[float] = deque(maxlen=STEADY_FRAMES)
        self.dbfs = SILENCE_FLOOR_DBFS

    def update(self, level: float) -> float:
        self.levels.append(level)
        if level < self.dbfs:
            self.dbfs = level
        elif len(self.levels) == STEADY_FRAMES and max(self.levels) - min(self.levels) <= STEADY_RANGE_DB:
            self.dbfs = sum(self.levels) / STEADY_FRAMES
        return self.dbfs


@dataclass
class _Phrase:
    who: str
    start: float
    end: float
    pcm: np.ndarray
    rate: int
    seen: float = 0.0   # clock time when its end was noticed

    @property
    def seconds(self) -> float:
        return self.pcm.size / self.rate


_Frame = tuple[float, np.ndarray, float]   # (time of the first sample, samples, level in dBFS)


class _Segmenter:
    """One side's frames cut into phrases (see the module's docstring)."""

    def __init__(self, who: str, rate: int, threshold_dbfs: float = VAD_THRESHOLD_DBFS) -> None:
        self.who, self.rate, self.base_dbfs = who, rate, threshold_dbfs
        self.vad = VoiceActivity(threshold_dbfs, start_frames=2, hangover_ms=PAUSE_MS, sample_rate=rate)
        self.floor = _NoiseFloor()
        self.before: deque[_Frame] = deque(maxlen=round(EDGE_S / FRAME_S))
        self.frames: list[_Frame] = []
        self.open_samples = 0

    def feed(self, samples: np.ndarray, t: float) -> _Phrase | None:
        """Take one frame (`t`: time of its first sample); return a phrase when one ends."""
        samples = np.array(samples, dtype=np.int16).reshape(-1)   # a copy: callers reuse buffers
        edge = self.vad.feed(samples)
        frame = (t, samples, self.vad.level)
        noise = self.floor.update(self.vad.level)
        self.vad.threshold_dbfs = max(self.base_dbfs, noise + NOISE_MARGIN_DB)
        if edge == "start":
            self.frames, self.open_samples = [*self.before, frame], samples.size
            self.before.clear()
            return None
        if not self.vad.speaking and edge != "end":
            self.before.append(frame)
            return None
        self.frames.append(frame)   # after a cut at MAX_PHRASE_S, the speech goes on here
        self.open_samples += samples.size
        if edge == "end" or self.open_samples >= MAX_PHRASE_S * self.rate:
            return self.cut()
        return None

    def cut(self) -> _Phrase | None:
        """End the open phrase here: it, or None when it holds too little speech."""
        frames, self.frames, self.open_samples = self.frames, [], 0
        gate = self.vad.threshold_dbfs
        loud = [i for i, (_, _, level) in enumerate(frames) if level >= gate]
        if sum(frames[i][1].size for i in loud) < MIN_SPEECH_S * self.rate:
            return None
        first, last = loud[0], loud[-1]
        keep = round(EDGE_S / FRAME_S)
        pcm = np.concatenate([f[1] for f in frames[max(0, first - keep):last + keep + 1]])
        end = frames[last][0] + frames[last][1].size / self.rate
        return _Phrase(self.who, frames[first][0], end, pcm, self.rate)

    def flush(self) -> _Phrase | None:
        """The open phrase, ended now (or None); the gate starts afresh."""
        phrase = self.cut() if self.frames else None
        self.vad.reset()
        return phrase


# --- live -------------------------------------------------------------------------------


class LiveTranscriber:
    """Both sides of a call, recognised phrase by phrase while it goes on.

    `feed(who, samples, t)` takes 20 ms frames (int16 mono 48 kHz, `t` the monotonic time of
    the first sample) from any thread; it only gates and buffers, it never waits for
    recognition. Finished phrases of both sides queue in the order of their end, and one worker
    thread recognises them and calls `on_utterance(Utterance)` (from that thread: move it to
    your loop). More than `max_pending_s` of audio waiting drops the oldest phrases (`dropped`
    counts them); `errors` counts phrases the recogniser failed on (logged).

    `lag` holds, per utterance, the seconds from its phrase's end being noticed (a 600 ms pause
    after the last word) to its text being emitted. `close(timeout)` recognises what is left,
    the open phrases included, and stops the worker.
    """

    def __init__(self, recognizer: Recognizer, on_utterance: Callable[[Utterance], None], *,
                 threshold_dbfs: float = VAD_THRESHOLD_DBFS, max_pending_s: float = MAX_PENDING_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.recognizer = recognizer
        self.max_pending_s = max_pending_s
        self.dropped = 0
        self.errors = 0
        self._on_utterance = on_utterance
        self._clock = clock
        self._sides = {who: _Segmenter(who, FEED_RATE, threshold_dbfs) for who in SIDES}
        self._lock = threading.Lock()        # the segmenters; taken before _ready, never after
        self._ready = threading.Condition()  # the queue
        self._queue: list[tuple[float, int, _Phrase]] = []
        self._order = itertools.count()
        self._pending_s = 0.0
        self._closed = False                 # under _lock: no more feeding
        self._draining = False               # under _ready: the worker ends once the queue is empty
        self._lag: list[float] = []
        self._worker = threading.Thread(target=self._run, name="polyphone-transcriber", daemon=True)
        self._worker.start()

    @property
    def lag(self) -> list[float]:
        return list(self._lag)

    @property
    def pending_s(self) -> float:
        """Seconds of audio waiting to be recognised (not counting the phrase under way)."""
        with self._ready:
            return self._pending_s

    def feed(self, who: str, samples: np.ndarray, t: float) -> None:
        side = self._sides.get(who)
        if side is None:
            raise ValueError(f"who must be one of {SIDES}, not {who!r}")
        with self._lock:
            if self._closed:
                return
            phrase = side.feed(samples, t)
            if phrase is not None:
                self._submit(phrase)

    def _submit(self, phrase: _Phrase) -> None:
        phrase.seen = self._clock()
        with self._ready:
            heapq.heappush(self._queue, (phrase.end, next(self._order), phrase))
            self._pending_s += phrase.seconds
            while self._pending_s > self.max_pending_s and self._queue:
                _, _, oldest = heapq.heappop(self._queue)
                self._pending_s -= oldest.seconds
                self.dropped += 1
            self._ready.notify()

    def close(self, timeout: float = 30.0) -> bool:
        """Recognise what is left and stop; False when that took longer than `timeout` (the rest
        is then dropped and the worker stops after the phrase under way)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for side in self._sides.values():
                    phrase = side.flush()
                    if phrase is not None:
                        self._submit(phrase)
        with self._ready:
            self._draining = True
            self._ready.notify_all()
        if threading.current_thread() is self._worker:   # closed from on_utterance: it ends after
            return False
        self._worker.join(timeout)
        if not self._worker.is_alive():
            return True
        with self._ready:
            self.dropped += len(self._queue)
            self._queue.clear()
            self._pending_s = 0.0
        return False

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._draining:
                    self._ready.wait()
                if not self._queue:
                    return
                _, _, phrase = heapq.heappop(self._queue)
                self._pending_s = max(0.0, self._pending_s - phrase.seconds)
            self._recognise(phrase)

    def _recognise(self, phrase: _Phrase) -> None:
        try:
            pcm = _resample(phrase.pcm, phrase.rate, self.recognizer.sample_rate)
            text = " ".join(self.recognizer.transcribe(pcm).split())
        except Exception:  # one bad phrase must not end the transcript
            self.errors += 1
            log.exception("speech recognition failed on a %s phrase", phrase.who)
            return
        if not text:
            return
        utterance = Utterance(phrase.who, phrase.start, phrase.end, text)
        self._lag.append(self._clock() - phrase.seen)
        try:
            self._on_utterance(utterance)
        except Exception:
            log.exception("the utterance handler failed")


# --- whole recordings -------------------------------------------------------------------


def phrases(pcm: np.ndarray, sample_rate: int = FEED_RATE) -> list[tuple[float, float, np.ndarray]]:
    """A recording (int16 mono) cut into phrases as LiveTranscriber cuts them:
    (start s, end s, samples) each."""
    x = np.asarray(pcm)
    if x.dtype != np.int16:
        raise ValueError("phrases takes int16 samples")
    x = x.reshape(-1)
    segmenter = _Segmenter("caller", sample_rate)
    frame = max(1, round(sample_rate * FRAME_S))
    found = [segmenter.feed(x[i:i + frame], i / sample_rate) for i in range(0, x.size, frame)]
    found.append(segmenter.flush())
    return [(p.start, p.end, p.pcm) for p in found if p is not None]


def transcribe_pcm(recognizer: Recognizer, pcm48k: np.ndarray, sample_rate: int = FEED_RATE) -> str:
    """The words in a whole recording (int16 mono at `sample_rate`), phrase by phrase, joined by
    spaces; "" when nothing was said. Blocking: recognition runs in the calling thread."""
    texts = (recognizer.transcribe(_resample(pcm, sample_rate, recognizer.sample_rate))
             for _, _, pcm in phrases(pcm48k, sample_rate))
    return " ".join(word for text in texts for word in text.split())
