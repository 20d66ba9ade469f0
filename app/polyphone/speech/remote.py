"""A recogniser in its own process, so that recognition never holds this process's GIL.

pocketsphinx holds the GIL while it loads its model (~450 ms measured here: the event loop
stood still that long) and while it decodes; in a thread of the app that is lag on the loop
that paces the call's audio. `RemoteRecognizer` starts `polyphone --asr-worker ENGINE [MODEL]`
(the frozen app runs itself the same way), which loads the recogniser and then takes phrase
after phrase over its stdin/stdout. Every message is a 4-byte big-endian length and a payload.
Requests are one byte and its data: `B` a phrase begins, `A` + raw int16 PCM at the
recogniser's rate (more of it; no answer), `P` the words so far, `E` the phrase is over, `X`
it is abandoned (no answer). Answers are JSON: `{"label", "sample_rate"}` once when ready, then
`{"partial"}` to a `P` and `{"text"}` or `{"error", "action"}` to an `E`. Reading an answer
blocks in os.read, which releases the GIL. The worker exits when its stdin closes.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO

import numpy as np

from .transcribe import TranscriptionError

WORKER_FLAG = "--asr-worker"
MAX_MESSAGE = 64 * 1024 * 1024
READY_TIMEOUT_S = 60.0
_HEADER = struct.Struct(">I")
BEGIN, AUDIO, PARTIAL, END, ABANDON = b"B", b"A", b"P", b"E", b"X"
_RESTART = "Reinstall Polyphone if this persists (the speech recogniser is part of it)."


def write_message(out: BinaryIO, payload: bytes) -> None:
    out.write(_HEADER.pack(len(payload)) + payload)
    out.flush()


def read_message(inp: BinaryIO) -> bytes | None:
    """One message; None at the end of the stream."""
    header = inp.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes is too long")
    payload = inp.read(size)
    if len(payload) < size:
        return None
    return payload


def worker_command(engine: str, model: str | None = None) -> list[str]:
    args = [WORKER_FLAG, engine, *([model] if model is not None else [])]
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "polyphone", *args]


class RemoteRecognizer:
    """The Recognizer protocol (speech.transcribe) over a child process. Blocking; thread-safe."""

    def __init__(self, engine: str = "pocketsphinx", model: str | None = None, *, wait: bool = True) -> None:
        """Starts the worker; with `wait`, also waits until it has loaded the recogniser (~0.3-1.7
        s), which otherwise happens on first use of `ready()`, `label` or `transcribe`."""
        self.name = engine
        self._lock = threading.Lock()
        self._ready: dict[str, Any] | None = None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self._proc = subprocess.Popen(worker_command(engine, model), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            raise TranscriptionError(f"The speech recogniser could not be started ({exc.strerror}).",
                                     _RESTART) from None
        if wait:
            self.ready()

    def ready(self) -> dict[str, Any]:
        """The worker's ready message (blocks until it has loaded); TranscriptionError if it failed."""
        with self._lock:
            if self._ready is None:
                self._ready = self._answer()
            return self._ready

    @property
    def label(self) -> str:
        return str(self.ready()["label"])

    @property
    def sample_rate(self) -> int:
        return int(self.ready()["sample_rate"])

    def _answer(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        try:
            payload = read_message(self._proc.stdout)  # type: ignore[arg-type]
        except (OSError, ValueError):
            payload = None
        if payload is None:
            code = self._proc.poll()
            raise TranscriptionError(f"The speech recogniser stopped (exit code {code}).", _RESTART)
        answer = json.loads(payload)
        if "error" in answer:
            raise TranscriptionError(answer["error"], answer.get("action", ""))
        return answer

    def stream(self) -> "_RemoteStream":
        """A phrase recognised while it is spoken (speech/stream.py); one at a time per worker."""
        return _RemoteStream(self)

    def transcribe(self, pcm16k: np.ndarray) -> str:
        stream = self.stream()
        try:
            stream.feed(pcm16k)
        except TranscriptionError:
            stream.abandon()
            raise
        return stream.finish()

    def _send(self, kind: bytes, data: bytes = b"") -> None:
        code = self._proc.poll()
        if code is not None:
            raise TranscriptionError(f"The speech recogniser stopped (exit code {code}).", _RESTART)
        try:
            write_message(self._proc.stdin, kind + data)  # type: ignore[arg-type]
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise TranscriptionError(f"The speech recogniser stopped ({exc}).", _RESTART) from None

    def close(self, timeout: float = 5.0) -> None:
        """End the worker (its stdin closes; killed if it does not go within `timeout`). A phrase
        still under way in another thread gets `timeout` to finish, then fails."""
        held = self._lock.acquire(timeout=timeout)
        try:
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                try:
                    self._proc.stdin.close()
                except (OSError, ValueError):
                    pass
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if held and self._proc.stdout is not None:
                self._proc.stdout.close()
        finally:
            if held:
                self._lock.release()

    def __del__(self) -> None:  # a forgotten worker does not outlive its recogniser
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


class _RemoteStream:
    """A phrase sent to the worker as it comes; holds the recogniser from the first `feed` to
    `finish` or `abandon` (speech/stream.py)."""

    def __init__(self, recognizer: RemoteRecognizer) -> None:
        self._r = recognizer
        self._open = False
        self._done = False

    def _begin(self) -> None:
        if self._open:
            return
        self._r.ready()
        self._r._lock.acquire()
        self._open = True
        try:
            self._r._send(BEGIN)
        except TranscriptionError:
            self._end()
            raise

    def feed(self, pcm16k: np.ndarray) -> None:
        if self._done:
            return
        self._begin()
        try:
            self._r._send(AUDIO, np.ascontiguousarray(pcm16k, dtype=np.int16).tobytes())
        except TranscriptionError:
            self._end()
            raise

    def partial(self) -> str:
        if not self._open or self._done:
            return ""
        try:
            self._r._send(PARTIAL)
            return str(self._r._answer().get("partial", ""))
        except TranscriptionError:
            self._end()
            raise

    def finish(self) -> str:
        if self._done:
            return ""
        try:
            self._begin()
            self._r._send(END)
            return str(self._r._answer().get("text", ""))
        finally:
            self._end()

    def abandon(self) -> None:
        if self._done:
            return
        try:
            if self._open:
                self._r._send(ABANDON)
        except TranscriptionError:
            pass
        finally:
            self._end()

    def _end(self) -> None:
        self._done = True
        if self._open:
            self._open = False
            self._r._lock.release()
