"""A preallocated single-producer / single-consumer ring of int16 samples.

One side is a PortAudio callback thread, the other the asyncio loop. Both
sides copy with numpy into or out of the one preallocated array; the lock is
held only for index arithmetic and the copy (no allocation, no logging).
When a write would overflow, the oldest samples are dropped and counted, so
the delay through the ring stays bounded.
"""

from __future__ import annotations

import threading

import numpy as np


class Ring:
    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._cap = capacity
        self._read = 0    # total samples ever read (or dropped)
        self._write = 0   # total samples ever written
        self._lock = threading.Lock()
        self.dropped = 0  # samples dropped to make room (overflow)

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def available(self) -> int:
        return self._write - self._read

    def write(self, samples: np.ndarray) -> None:
        """Append; on overflow the oldest samples go. Never blocks for long."""
        n = len(samples)
        if n > self._cap:
            samples = samples[n - self._cap:]
            self.dropped += n - self._cap
            n = self._cap
        with self._lock:
            over = self._write + n - self._read - self._cap
            if over > 0:
                self._read += over
                self.dropped += over
            start = self._write % self._cap
            first = min(n, self._cap - start)
            self._buf[start:start + first] = samples[:first]
            if first < n:
                self._buf[:n - first] = samples[first:]
            self._write += n

    def read_into(self, out: np.ndarray) -> int:
        """Fill `out` from the oldest samples; returns how many were there (the rest untouched)."""
        with self._lock:
            n = min(len(out), self._write - self._read)
            start = self._read % self._cap
            first = min(n, self._cap - start)
            out[:first] = self._buf[start:start + first]
            if first < n:
                out[first:n] = self._buf[:n - first]
            self._read += n
        return n

    def read(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int16)
        got = self.read_into(out)
        return out[:got]

    def skip(self, n: int) -> int:
        """Drop up to n of the oldest samples (latency control); returns how many."""
        with self._lock:
            n = max(0, min(n, self._write - self._read))
            self._read += n
        return n

    def clear(self) -> None:
        with self._lock:
            self._read = self._write
