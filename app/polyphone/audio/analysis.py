"""Audio analysis on int16 samples: levels and voice activity. numpy only, no Qt.

`VoiceActivity` is deliberately simple (an energy gate with hysteresis in time):
good enough to take turns with a person on a clean line, which is what the
local gateway's demo agent and the level meters need.
"""

from __future__ import annotations

import math

import numpy as np

SILENCE_FLOOR_DBFS = -120.0
"""What `level_dbfs` reports for digital silence (instead of -inf)."""

FULL_SCALE = 32768.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (a full-scale square wave is 0 dBFS).

    Empty input and digital silence give SILENCE_FLOOR_DBFS (-120), never -inf.
    """
    if samples.size == 0:
        return SILENCE_FLOOR_DBFS
    x = samples.astype(np.float64)
    rms = math.sqrt(float(np.mean(x * x)))
    if rms <= 0.0:
        return SILENCE_FLOOR_DBFS
    return max(SILENCE_FLOOR_DBFS, 20.0 * math.log10(rms / FULL_SCALE))


class VoiceActivity:
    """Energy-gated voice activity with a start hang and an end hangover.

    Feed consecutive frames (normally 20 ms of 48 kHz int16). Speech starts
    after `start_frames` consecutive frames at or above `threshold_dbfs`, and
    ends once the level has stayed below it for `hangover_ms` (so the gaps
    between words do not end a turn). `feed()` returns "start" or "end" on the
    frame where that happens, None otherwise.
    """

    def __init__(self, threshold_dbfs: float = -40.0, *, start_frames: int = 2,
                 hangover_ms: float = 300.0, sample_rate: int = 48_000) -> None:
        if start_frames < 1:
            raise ValueError("start_frames must be at least 1")
        if hangover_ms < 0 or sample_rate <= 0:
            raise ValueError("hangover_ms must be >= 0 and sample_rate > 0")
        self.threshold_dbfs = threshold_dbfs
        self.start_frames = start_frames
        self.hangover_ms = hangover_ms
        self.sample_rate = sample_rate
        self.speaking = False
        self.level = SILENCE_FLOOR_DBFS  # level of the last frame fed
        self._above = 0                  # consecutive loud frames while not speaking
        self._quiet_ms = 0.0             # quiet time accumulated while speaking

    def reset(self) -> None:
        self.speaking = False
        self._above = 0
        self._quiet_ms = 0.0

    def feed(self, samples: np.ndarray) -> str | None:
        """Take one frame; return "start", "end" or None."""
        self.level = level_dbfs(samples)
        loud = self.level >= self.threshold_dbfs
        if not self.speaking:
            self._above = self._above + 1 if loud else 0
            if self._above >= self.start_frames:
                self.speaking = True
                self._above = 0
                self._quiet_ms = 0.0
                return "start"
            return None
        if loud:
            self._quiet_ms = 0.0
            return None
        self._quiet_ms += 1000.0 * len(samples) / self.sample_rate
        if self._quiet_ms >= self.hangover_ms:
            self.speaking = False
            self._quiet_ms = 0.0
            return "end"
        return None
