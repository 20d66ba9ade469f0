"""Audio cut into phrases, the way the recognisers want it.

An energy gate (`audio.analysis.VoiceActivity`) at -40 dBFS, or 10 dB over a steady noise floor
when the line is noisier than that (a hiss or a hum holds its level within a few dB for half a
second; speech never does), so background noise is not sent to the recogniser. A phrase is
speech whose pauses are at most PAUSE_MS, with at least 200 ms of it over the gate, and at most
15 s (longer speech is cut there and goes on in the next phrase). 200 ms of audio on either
side of the speech is kept, since recognisers want some silence around the words.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..audio.analysis import SILENCE_FLOOR_DBFS, VoiceActivity
from .transcribe import FEED_RATE, Recognizer, _resample

FRAME_S = 0.020               # the frame transcribe_pcm cuts a recording into
VAD_THRESHOLD_DBFS = -40.0    # the gate on a quiet line
NOISE_MARGIN_DB = 10.0        # on a noisy line, speech must be this far over the noise
STEADY_FRAMES = 25            # the level holding within STEADY_RANGE_DB this long is noise
STEADY_RANGE_DB = 4.0
PAUSE_MS = 450.0              # a longer pause ends the phrase (600 -> 450: caption lag -0.15 s)
MIN_SPEECH_S = 0.2            # shorter blips (clicks, a cough's edge) are not sent
MAX_PHRASE_S = 15.0
EDGE_S = 0.2                  # audio kept before and after the speech


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
