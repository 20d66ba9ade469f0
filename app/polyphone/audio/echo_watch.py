"""Is the agent hearing itself? The agent's audio, found in the microphone after echo cancellation.

Fed the microphone's frames as they are sent (after processing) and the agent's
frames as they are played (dated when they will be heard). Once a second `check()`
correlates the last second of microphone with the agent's last 1.3 s, at lags of
0-300 ms (an echo comes back after the speaker, the room and the microphone's
buffers), on copies decimated to 8 kHz: about 0.3 ms of CPU a second. 1.0 means the
microphone carried a (scaled) copy of the agent; speech that is not the agent's stays
near 0.1. It also counts the microphone frames that reached full scale (clipping).
Both figures go out in `AudioStats` (`agent_echo`, `mic_clipped_frames`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .analysis import best_lag_correlation, level_dbfs

DECIMATE = 6                 # 48 kHz -> 8 kHz
RATE = 48_000 // DECIMATE
WINDOW_S = 1.0
MAX_ECHO_S = 0.3
AGENT_MIN_DBFS = -45.0       # below this the agent said nothing to echo
MIC_MIN_DBFS = -65.0
CLIP = 32_600


def _decimate(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // DECIMATE * DECIMATE
    return samples[:n].astype(np.float32).reshape(-1, DECIMATE).mean(axis=1)


class EchoWatch:
    def __init__(self) -> None:
        keep = int((WINDOW_S + MAX_ECHO_S + 1.0) * 50)   # 20 ms frames
        self._mic: deque[tuple[float, np.ndarray]] = deque(maxlen=keep)
        self._far: deque[tuple[float, np.ndarray]] = deque(maxlen=keep)
        self._clipped = 0
        self.agent_echo = 0.0
        self.mic_clipped_frames = 0

    def feed_mic(self, samples: np.ndarray, t: float) -> None:
        if len(samples) and int(np.abs(samples.astype(np.int32)).max()) >= CLIP:
            self._clipped += 1
        self._mic.append((t, _decimate(samples)))

    def feed_far(self, samples: np.ndarray, heard_at: float) -> None:
        self._far.append((heard_at, _decimate(samples)))

    def check(self, now: float) -> tuple[float, int]:
        """(agent_echo, mic_clipped_frames) for the last second; counters restart."""
        self.mic_clipped_frames, self._clipped = self._clipped, 0
        mic = [x for t, x in self._mic if now - WINDOW_S <= t <= now]
        far = [x for t, x in self._far if now - WINDOW_S - MAX_ECHO_S <= t <= now]
        self.agent_echo = 0.0
        if len(mic) >= 25 and len(far) >= 25:
            m, f = np.concatenate(mic), np.concatenate(far)
            if level_dbfs(f.astype(np.int16)) >= AGENT_MIN_DBFS and \
                    level_dbfs(m.astype(np.int16)) >= MIC_MIN_DBFS:
                corr, _lag = best_lag_correlation(m, f, max_lag_s=MAX_ECHO_S + 0.05, rate=RATE)
                self.agent_echo = round(max(0.0, corr), 3)
        return self.agent_echo, self.mic_clipped_frames
