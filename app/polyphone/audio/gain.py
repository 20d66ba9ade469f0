"""SpeechGain: gain control for the caller's voice that never learns from the agent's echo.

libwebrtc's adaptive digital gain raises whatever it hears, and during the
echo canceller's first second on a call that includes the residual echo of
the agent's greeting: measured here, it lifted that residue from below
-50 dBFS to -33 dBFS, loud enough for the agent to take it for the caller
and stop talking (a barge-in on itself). This gain adapts only on the
caller's own speech while the far end is quiet, and starts at 0 dB, so
residual echo is never amplified beyond what the caller's voice justified.

Works on 10 ms int16 frames in place; no allocation per frame.
"""

from __future__ import annotations

import numpy as np

TARGET_DBFS = -20.0      # where speech should sit
MAX_GAIN_DB = 24.0
SPEECH_DBFS = -50.0      # a near-end frame louder than this (and no far end) counts as speech
FAR_ACTIVE_DBFS = -50.0  # a far-end frame louder than this holds adaptation ...
FAR_HOLD_FRAMES = 50     # ... for this many 10 ms frames (the echo tail) ...
FAR_MAX_GAIN_DB = 6.0    # ... and caps the gain applied meanwhile (residual echo stays low)
UP_DB_PER_FRAME = 0.08   # 8 dB/s up
DOWN_DB_PER_FRAME = 0.3  # 30 dB/s down (never blast)


def _dbfs(frame: np.ndarray) -> float:
    power = float(np.dot(frame.astype(np.float32), frame.astype(np.float32))) / max(len(frame), 1)
    return 10.0 * np.log10(power / (32768.0 ** 2)) if power > 0 else -120.0


class SpeechGain:
    def __init__(self) -> None:
        self.gain_db = 0.0
        self._far_hold = 0
        self._scratch = np.zeros(480, dtype=np.float32)

    def far_end(self, frame: np.ndarray) -> None:
        """A 10 ms frame as it goes to the speaker."""
        if _dbfs(frame) > FAR_ACTIVE_DBFS:
            self._far_hold = FAR_HOLD_FRAMES

    def apply(self, frame: np.ndarray) -> None:
        """Adapt on near-end speech, then scale the 10 ms frame in place (with a hard limit)."""
        if self._far_hold > 0:
            self._far_hold -= 1
        else:
            level = _dbfs(frame)
            if level > SPEECH_DBFS:
                want = min(MAX_GAIN_DB, max(0.0, TARGET_DBFS - level))
                step = UP_DB_PER_FRAME if want > self.gain_db else -DOWN_DB_PER_FRAME
                if abs(want - self.gain_db) <= abs(step):
                    self.gain_db = want
                else:
                    self.gain_db += step
        gain_db = min(self.gain_db, FAR_MAX_GAIN_DB) if self._far_hold > 0 else self.gain_db
        if gain_db <= 0.0:
            return
        scratch = self._scratch[:len(frame)]
        np.multiply(frame, 10.0 ** (gain_db / 20.0), out=scratch)
        np.clip(scratch, -32767, 32767, out=scratch)
        frame[:] = scratch
