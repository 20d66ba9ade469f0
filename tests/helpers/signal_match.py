"""Compare what came back with what was sent: best-lag normalised correlation."""

from __future__ import annotations

import numpy as np


def best_correlation(sent: np.ndarray, received: np.ndarray, rate: int = 48_000,
                     max_lag_s: float = 1.0) -> tuple[float, float]:
    """(peak normalised correlation, lag in seconds) of `received` against `sent`.

    Uses the envelope-free waveform; both are int16 mono at `rate`.
    """
    a = sent.astype(np.float64)
    b = received.astype(np.float64)
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    spec = np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n))
    xc = np.fft.irfft(spec, n)
    max_lag = min(int(max_lag_s * rate), len(b) - 1)
    lags = np.arange(0, max_lag + 1)
    lag = int(lags[np.argmax(xc[lags])])
    seg_b = b[lag:lag + len(a)]
    seg_a = a[:len(seg_b)]
    denom = np.sqrt(np.sum(seg_a ** 2) * np.sum(seg_b ** 2))
    if denom == 0:
        return 0.0, lag / rate
    return float(np.sum(seg_a * seg_b) / denom), lag / rate
