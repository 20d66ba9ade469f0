"""Compare what came back with what was sent: a thin alias of the package's helper."""

from __future__ import annotations

import numpy as np

from polyphone.audio.analysis import best_lag_correlation, click_times  # noqa: F401


def best_correlation(sent: np.ndarray, received: np.ndarray, rate: int = 48_000,
                     max_lag_s: float = 1.0) -> tuple[float, float]:
    """(peak normalised correlation, lag in seconds) of `received` against `sent`."""
    return best_lag_correlation(sent, received, max_lag_s=max_lag_s, rate=rate)
