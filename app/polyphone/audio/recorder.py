"""Stereo call recording: the caller on the left, the agent on the right, time-aligned.

`CallRecorder` writes a 16-bit PCM WAV as the call goes. Each side's chunks
carry the monotonic time of their first sample; the recorder places them on one
timeline that starts at the first chunk of either side, fills gaps with
silence, and writes a stretch of the timeline once both sides have delivered
it (or once one side lags more than `max_skew_s`: its missing audio becomes
silence). The WAV header's sizes are rewritten at every flush (about every
`flush_interval_s` of audio), so a process killed outright leaves a file that
any WAV reader opens, missing at most about a second at the end.

Memory is a fixed ring of a few seconds. The file is written on the thread
that calls `add_caller`/`add_agent` (a small write every ~100 ms): call them
from the audio task, not from inside a PortAudio callback. A write error
(disk full, folder gone, file deleted) never raises: recording stops, `error`
says why and `on_error(reason)` is called once.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from ..paths import open_private

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
HEADER_BYTES = 44
CALLER, AGENT = 0, 1            # channel index: left, right
_MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_BYTES - 8)   # RIFF sizes are 32-bit (~6.2 h of this)


def _wav_header(data_bytes: int, rate: int) -> bytes:
    channels, width = 2, 2
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", HEADER_BYTES - 8 + data_bytes, b"WAVE",
                       b"fmt ", 16, 1, channels, rate, rate * channels * width,
                       channels * width, 8 * width, b"data", data_bytes)


class CallRecorder:
    """Records a call to a stereo 48 kHz 16-bit WAV as it happens.

    `add_caller(samples, t)` / `add_agent(samples, t)`: int16 mono chunks of any
    size, `t` = monotonic time of the chunk's first sample. A chunk within
    `snap_ms` of where its side left off is taken as continuing it (timestamp
    jitter is not turned into clicks); a later one leaves silence, an earlier
    one overwrites. Audio stamped before the part already written (including
    before the first chunk of the call) is dropped and counted in `late_samples`;
    a chunk stamped more than `max_gap_s` beyond everything so far is taken for
    a clock error and placed at the end instead (`clock_jumps`).
    """

    def __init__(self, path: str | Path, *, sample_rate: int = SAMPLE_RATE,
                 flush_interval_s: float = 0.5, max_skew_s: float = 0.5, snap_ms: float = 20.0,
                 ring_s: float = 4.0, max_gap_s: float = 30.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        if not (flush_interval_s > 0 and 0 <= max_skew_s < ring_s / 2):
            raise ValueError("flush_interval_s > 0 and 0 <= max_skew_s < ring_s / 2")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.on_error = on_error
        self.error: str | None = None
        self.recording = False
        self.late_samples = 0
        self.clock_jumps = 0    # chunks stamped implausibly far ahead, placed at the head instead
        self._flush_every = max(1, int(flush_interval_s * sample_rate))
        self._skew = int(max_skew_s * sample_rate)
        self._snap = int(snap_ms * sample_rate / 1000)
        self._max_gap = int(max_gap_s * sample_rate)
        self._block = max(1, sample_rate // 10)          # write in ~100 ms pieces
        self._cap = int(ring_s * sample_rate)
        self._ring = np.zeros((self._cap, 2), dtype=np.int16)
        self._lock = threading.Lock()
        self._origin: float | None = None                 # monotonic time of timeline sample 0
        self._pos: list[int | None] = [None, None]        # next timeline sample per side
        self._written = 0                                 # timeline samples in the file
        self._flushed = 0                                 # ... of which the header knows
        self._file: BinaryIO | None = None
        try:
            self._file = open_private(self.path)  # readable by the user only
            self._file.write(_wav_header(0, sample_rate))
            self._file.flush()
            self.recording = True
        except OSError as exc:
            self._stop(exc)

    # --- public ---------------------------------------------------------------------

    @property
    def frames_written(self) -> int:
        """Stereo frames in the file so far (the header may lag by one flush)."""
        return self._written

    @property
    def duration_s(self) -> float:
        return self._written / self.sample_rate

    def add_caller(self, samples: np.ndarray, t: float) -> None:
        self._add(CALLER, samples, t)

    def add_agent(self, samples: np.ndarray, t: float) -> None:
        self._add(AGENT, samples, t)

    def flush(self) -> None:
        """Write what both sides have delivered and update the header now."""
        with self._lock:
            if self.recording:
                self._commit(self._ready())
                self._sync_header()

    def close(self) -> None:
        """Write everything (the shorter side padded with silence) and finalise. Idempotent."""
        with self._lock:
            if self.recording:
                end = max((p for p in self._pos if p is not None), default=self._written)
                self._commit(end)
                self._sync_header()
            f, self._file, self.recording = self._file, None, False
            if f is not None:
                try:
                    f.close()
                except OSError as exc:
                    self._report(exc)

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- placing chunks ------------------------------------------------------------------

    def _add(self, side: int, samples: np.ndarray, t: float) -> None:
        if not self.recording:
            return
        x = np.asarray(samples, dtype=np.int16).reshape(-1)
        with self._lock:
            if not self.recording or len(x) == 0:
                return
            if self._origin is None:
                self._origin = t
            start = int(round((t - self._origin) * self.sample_rate))
            pos = self._pos[side]
            if pos is not None and abs(start - pos) <= self._snap:
                start = pos
            head = max((p for p in self._pos if p is not None), default=0)
            if start - head > self._max_gap:             # a clock error, not a pause
                self.clock_jumps += 1
                start = head
            if start < self._written:                    # already on disk: too late
                cut = min(len(x), self._written - start)
                self.late_samples += cut
                x, start = x[cut:], start + cut
            step = self._cap // 2
            for i in range(0, len(x), step):
                self._place(side, x[i:i + step], start + i)
            end = start + len(x)
            self._pos[side] = end if pos is None else max(pos, end)
            ready = self._ready()
            if self.recording and ready - self._written >= self._block:
                self._commit(ready)
                if self.recording and self._written - self._flushed >= self._flush_every:
                    self._sync_header()

    def _place(self, side: int, x: np.ndarray, start: int) -> None:
        end = start + len(x)
        if end - self._written > self._cap:             # no room: write out the oldest part
            self._commit(end - self._cap)
        a = start % self._cap
        first = min(len(x), self._cap - a)
        self._ring[a:a + first, side] = x[:first]
        if first < len(x):
            self._ring[:len(x) - first, side] = x[first:]

    def _ready(self) -> int:
        """How far the timeline can be written: both sides there, or one lagging too far."""
        known = [p if p is not None else self._written for p in self._pos]
        head = max(known)
        return max(min(known), head - self._skew, self._written)

    # --- the file ---------------------------------------------------------------------

    def _commit(self, upto: int) -> None:
        """Write timeline samples [written, upto) and clear their ring slots."""
        if not self.recording or upto <= self._written or self._file is None:
            return
        if 4 * upto > _MAX_DATA_BYTES:
            self._stop(None, "the recording reached the WAV size limit (4 GB)")
            return
        try:
            while self._written < upto:
                a = self._written % self._cap
                b = min(self._cap, a + (upto - self._written))
                self._file.write(memoryview(self._ring[a:b]).cast("B"))
                self._ring[a:b] = 0
                self._written += b - a
        except (OSError, ValueError) as exc:
            self._stop(exc)

    def _sync_header(self) -> None:
        f = self._file
        if f is None or not self.recording:
            return
        try:
            f.flush()                                    # the data first, then the sizes
            if os.fstat(f.fileno()).st_nlink == 0:
                self._stop(None, "the recording file was deleted")
                return
            f.seek(0)
            f.write(_wav_header(4 * self._written, self.sample_rate))
            f.seek(0, os.SEEK_END)
            f.flush()
            self._flushed = self._written
        except (OSError, ValueError) as exc:
            self._stop(exc)

    def _stop(self, exc: BaseException | None, reason: str | None = None) -> None:
        if reason is None:
            detail = getattr(exc, "strerror", None) or str(exc)
            reason = f"cannot write {self.path.name}: {detail}"
        self.recording = False
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except (OSError, ValueError):
                pass
        self._report(reason)

    def _report(self, reason: str | BaseException) -> None:
        if self.error is not None:
            return
        self.error = str(reason)
        log.error("recording stopped: %s", self.error)
        if self.on_error is not None:
            try:
                self.on_error(self.error)
            except Exception:
                log.exception("on_error callback failed")


# --- file names -----------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")
_TOKENISH = re.compile(r"\b(?=[A-Za-z_]*\d)(?=\d*[A-Za-z_])[A-Za-z0-9_]{16,}\b")


def safe_recording_name(profile_name: str, started_at: datetime | float) -> str:
    """"2026-11-23_19-40-05_Bookings-UK.wav": local start time and a cleaned profile name.

    Only letters, digits and single dashes survive from the name (accents are
    folded to ASCII), at most 40 characters; anything shaped like a token or an
    id (a UUID, a long run mixing letters and digits) is left out, so a name
    someone pasted a key into does not leak it. `started_at` is a datetime or a
    Unix time.
    """
    when = started_at if isinstance(started_at, datetime) else datetime.fromtimestamp(started_at)
    name = _TOKENISH.sub(" ", _UUID.sub(" ", profile_name or ""))
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40].rstrip("-") or "call"
    return f"{when:%Y-%m-%d_%H-%M-%S}_{name}.wav"
