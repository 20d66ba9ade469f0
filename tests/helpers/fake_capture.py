"""A Capture whose 'device' is the test: for unit tests of the microphone track's logic."""

from __future__ import annotations

import time

import numpy as np

from polyphone.audio.capture import Capture


class FakeCapture(Capture):
    """Writes into the ring directly instead of opening a PortAudio stream."""

    def __init__(self) -> None:
        super().__init__(None)
        self.last_callback = time.monotonic()

    def feed(self, samples: np.ndarray) -> None:
        self.ring.write(samples)
        self.callbacks += 1
        self.last_callback = time.monotonic()
