"""Both sides of a call recognised phrase by phrase while it goes on, each phrase while it is spoken.

`LiveTranscriber.feed(who, samples, t)` takes 20 ms frames (int16 mono 48 kHz, `t` the monotonic
time of the first sample) from any thread; it only gates (speech/phrases.py) and queues, never
waiting for recognition. From the moment a phrase opens, its audio goes to the recogniser as a
stream (speech/stream.py) in one worker thread, so that when the pause that ends it has been
heard only the recogniser's last step is left: with pocketsphinx, caption lag fell from a
median of 1.47 s to ~0.7 s (tests/bench/captions.py). Every `partial_every_s` of a phrase's
audio the words so far go to `on_utterance` as an `Utterance(final=False)` (when they changed;
none from a recogniser that reads only whole phrases), then once with `final=True`.

One phrase is recognised at a time, in the order they opened: a phrase of the other side that
opens meanwhile waits (DuplexCaptions, speech/live.py, gives each side its own transcriber and
recogniser process, so they never wait for each other). More than `max_pending_s` of audio
waiting drops the oldest phrases not yet begun (`dropped` counts them); `errors` counts phrases
the recogniser failed on (logged). `lag` holds, per utterance, the seconds from its phrase's end
being noticed (a PAUSE_MS pause after the last word) to its text being emitted.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import soxr

from .phrases import VAD_THRESHOLD_DBFS, _Phrase, _Segmenter
from .stream import open_stream
from .transcribe import FEED_RATE, SIDES, Recognizer, Utterance

log = logging.getLogger(__name__)

MAX_PENDING_S = 30.0          # more audio than this waiting: the oldest phrases are dropped
PARTIAL_EVERY_S = 0.5         # of a phrase's audio between two looks at its words so far
_END = object()               # the end of a phrase's audio, in its job's queue


@dataclass
class _Job:
    """One phrase on its way to the recogniser: its audio (48 kHz pieces), then _END and the
    segmenter's phrase (None: too little speech, abandon it)."""

    who: str
    start: float              # its first sound
    origin: float             # its first frame (the audio kept before the sound)
    parts: deque = field(default_factory=deque)
    seconds: float = 0.0
    phrase: _Phrase | None = None
    seen: float = 0.0         # when its end was noticed


class _Side:
    def __init__(self, who: str, threshold_dbfs: float) -> None:
        self.segmenter = _Segmenter(who, FEED_RATE, threshold_dbfs)
        self.job_id: int | None = None   # the phrase open on this side
        self.sent = 0                    # of the segmenter's frames, those queued


class LiveTranscriber:
    def __init__(self, recognizer: Recognizer, on_utterance: Callable[[Utterance], None], *,
                 threshold_dbfs: float = VAD_THRESHOLD_DBFS, max_pending_s: float = MAX_PENDING_S,
                 partial_every_s: float = PARTIAL_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.recognizer = recognizer
        self.max_pending_s = max_pending_s
        self.partial_every_s = partial_every_s
        self.dropped = 0
        self.errors = 0
        self._on_utterance = on_utterance
        self._clock = clock
        self._sides = {who: _Side(who, threshold_dbfs) for who in SIDES}
        self._lock = threading.Lock()        # the sides; taken before _ready, never after
        self._ready = threading.Condition()  # the jobs
        self._jobs: OrderedDict[int, _Job] = OrderedDict()
        self._ids = itertools.count()
        self._current: int | None = None     # the job the worker is on
        self._closed = False                 # under _lock: no more feeding
        self._draining = False               # under _ready: the worker ends once the jobs are done
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
            return sum(job.seconds for key, job in self._jobs.items() if key != self._current)

    # --- the feeding side -------------------------------------------------------------------

    def feed(self, who: str, samples: np.ndarray, t: float) -> None:
        side = self._sides.get(who)
        if side is None:
            raise ValueError(f"who must be one of {SIDES}, not {who!r}")
        with self._lock:
            if self._closed:
                return
            before = side.segmenter.frames
            phrase = side.segmenter.feed(samples, t)
            self._follow(side, before, phrase)

    def _follow(self, side: _Side, before: list, phrase: _Phrase | None) -> None:
        """Queue what the segmenter did with the last frame: a phrase opened, went on, ended."""
        frames = side.segmenter.frames
        if side.job_id is not None and (frames is not before or phrase is not None):
            self._push(side.job_id, before[side.sent:], end=True, phrase=phrase)
            side.job_id = None
        if frames and side.job_id is None:
            side.job_id, side.sent = next(self._ids), 0
            gate = side.segmenter.vad.threshold_dbfs
            start = next((f[0] for f in frames if f[2] >= gate), frames[0][0])
            with self._ready:
                self._jobs[side.job_id] = _Job(side.segmenter.who, start, frames[0][0])
        if side.job_id is not None and len(frames) > side.sent:
            self._push(side.job_id, frames[side.sent:])
            side.sent = len(frames)

    def _push(self, key: int, frames: list, end: bool = False, phrase: _Phrase | None = None) -> None:
        with self._ready:
            job = self._jobs.get(key)
            if job is None:           # dropped
                return
            for _, samples, _ in frames:
                job.parts.append(samples)
                job.seconds += samples.size / FEED_RATE
            if end:
                job.parts.append(_END)
                job.phrase, job.seen = phrase, self._clock()
            self._shed()
            self._ready.notify()

    def _shed(self) -> None:
        """Drop the oldest phrases not begun while more than max_pending_s waits (under _ready)."""
        while sum(j.seconds for k, j in self._jobs.items() if k != self._current) > self.max_pending_s:
            oldest = next((k for k in self._jobs if k != self._current), None)
            if oldest is None:
                return
            del self._jobs[oldest]
            self.dropped += 1

    def close(self, timeout: float = 30.0) -> bool:
        """Recognise what is left, the open phrases included, and stop; False when that took
        longer than `timeout` (the rest is then dropped; the worker stops after the phrase under
        way)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for side in self._sides.values():
                    before = side.segmenter.frames
                    self._follow(side, before, side.segmenter.flush())
                    if side.job_id is not None:   # flush found nothing to keep
                        self._push(side.job_id, [], end=True, phrase=None)
                        side.job_id = None
        with self._ready:
            self._draining = True
            self._ready.notify_all()
        if threading.current_thread() is self._worker:   # closed from on_utterance: it ends after
            return False
        self._worker.join(timeout)
        if not self._worker.is_alive():
            return True
        with self._ready:
            self.dropped += sum(1 for k in self._jobs if k != self._current)
            for k in [k for k in self._jobs if k != self._current]:
                del self._jobs[k]
        return False

    # --- the worker -------------------------------------------------------------------------

    def _next_part(self, key: int):
        """The job's next piece of audio or _END, waiting for it; None when it was dropped."""
        with self._ready:
            while True:
                job = self._jobs.get(key)
                if job is None:
                    return None
                if job.parts:
                    part = job.parts.popleft()
                    if part is not _END:
                        job.seconds = max(0.0, job.seconds - part.size / FEED_RATE)
                    return part
                self._ready.wait()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs and not self._draining:
                    self._ready.wait()
                if not self._jobs:
                    return
                key = next(iter(self._jobs))
                self._current = key
                job = self._jobs[key]
            try:
                self._recognise(key, job)
            finally:
                with self._ready:
                    self._jobs.pop(key, None)
                    self._current = None

    def _recognise(self, key: int, job: _Job) -> None:
        stream: list = []            # the phrase's stream, once it has one
        try:
            text, shown = self._stream(key, job, stream)
        except Exception:  # one bad phrase must not end the transcript
            self.errors += 1
            log.exception("speech recognition failed on a %s phrase", job.who)
            if stream:
                try:
                    stream[0].abandon()
                except Exception:
                    log.exception("the recogniser could not let go of a failed phrase")
            return
        if text is None:             # too little speech, or dropped
            if shown:                # a partial caption is on show: take it back
                self._emit(Utterance(job.who, job.start, job.start, "", True))
            return
        if not text and not shown:
            return
        phrase = job.phrase
        assert phrase is not None
        if text:
            self._lag.append(self._clock() - job.seen)
        self._emit(Utterance(job.who, phrase.start, phrase.end, text, True))

    def _stream(self, key: int, job: _Job, stream: list) -> tuple[str | None, str]:
        """Feed the job's audio to a stream as it comes, with a look at the words so far every
        partial_every_s: (its words, or None when abandoned; the last partial shown)."""
        rate = self.recognizer.sample_rate
        resampler = soxr.ResampleStream(FEED_RATE, rate, 1, dtype="int16") if rate != FEED_RATE else None
        fed, looked, shown = 0.0, 0.0, ""
        while True:
            part = self._next_part(key)
            if part is None or (part is _END and job.phrase is None):
                if stream:
                    stream.pop().abandon()
                return None, shown
            last = part is _END
            pcm = np.zeros(0, np.int16) if last else part
            if resampler is not None:
                pcm = resampler.resample_chunk(pcm, last=last)
            if not stream:
                stream.append(open_stream(self.recognizer))
            if pcm.size:
                stream[0].feed(np.ascontiguousarray(pcm, dtype=np.int16))
            if last:
                return " ".join(stream.pop().finish().split()), shown
            fed += part.size / FEED_RATE
            if fed - looked >= self.partial_every_s:
                looked = fed
                words = " ".join(stream[0].partial().split())
                if words and words != shown:
                    shown = words
                    self._emit(Utterance(job.who, job.start, job.origin + fed, words, False))

    def _emit(self, utterance: Utterance) -> None:
        try:
            self._on_utterance(utterance)
        except Exception:
            log.exception("the utterance handler failed")
