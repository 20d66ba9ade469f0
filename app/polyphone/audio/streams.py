"""Opening the PortAudio stream of capture or playout, and resampling to 48 kHz.

`stream_target.resolve` knows where a device id lives (and the PulseAudio
environment it needs while opening); this adds the callback, the low-latency
block size, and one error type with words for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .devices import DeviceError

SAMPLE_RATE = 48_000


StreamError = DeviceError  # what opening a stream raises: message + action


@dataclass
class OpenedStream:
    stream: Any          # sd.InputStream | sd.OutputStream
    rate: int            # the rate the stream really runs at
    device_name: str
    device_id: str | None
    fallback_reason: str = ""


def open_stream(kind: str, device_id: str | None, callback: Callable, *,
                block_ms: int = 10) -> OpenedStream:
    """Open (not start) an int16 stream on `device_id` (None: the system default).

    48 kHz mono when the device takes it; otherwise its own rate and/or stereo
    (read `rate` and `stream.channels`). Raises StreamError with what to do.
    """
    from .stream_target import resolve

    target = resolve(device_id, kind)
    stream = target.open_stream(kind, callback=callback, latency="low",
                                blocksize=SAMPLE_RATE * block_ms // 1000)
    return OpenedStream(stream, int(stream.samplerate), target.device.name, target.device.id,
                        target.fallback_reason or "")


class Resampler:
    """Streaming int16 mono resampler (libsoxr); identity when the rates match."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.identity = rate_in == rate_out
        self._stream = None
        if not self.identity:
            import soxr
            self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16",
                                               quality="HQ")

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)
