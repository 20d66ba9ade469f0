"""`polyphone --asr-worker ENGINE [MODEL]`: the recogniser's process (speech/remote.py's other end).

Loads the recogniser, says so, then takes one phrase at a time (begun, fed, finished or
abandoned) until stdin closes. Its stdout carries only protocol messages; anything a library
prints goes to stderr. A request that makes no sense (audio with no phrase begun, an unknown
kind) is an error on the phrase's answer, and the worker goes on.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from .remote import ABANDON, AUDIO, BEGIN, END, PARTIAL, read_message, write_message
from .stream import open_stream
from .transcribe import TranscriptionError, make_recognizer


def _send(out, message: dict) -> None:
    write_message(out, json.dumps(message).encode())


def _failed(exc: Exception) -> str:
    return f"recognition failed: {type(exc).__name__}: {exc}"[:300]


class _Phrases:
    """The phrase under way, if any, and the first thing that went wrong with it."""

    def __init__(self, recognizer, out) -> None:
        self.recognizer, self.out = recognizer, out
        self.stream = None
        self.problem = ""

    def handle(self, kind: bytes, data: bytes) -> None:
        if kind == BEGIN:
            self.drop()
            self.stream = open_stream(self.recognizer)
        elif kind == AUDIO:
            if self.stream is None:
                self.problem = self.problem or "audio came with no phrase begun"
            elif not self.problem:
                try:
                    self.stream.feed(np.frombuffer(data, dtype=np.int16))
                except Exception as exc:
                    self.problem = _failed(exc)
        elif kind == PARTIAL:
            words = ""
            if self.stream is not None and not self.problem:
                try:
                    words = self.stream.partial()
                except Exception as exc:
                    self.problem = _failed(exc)
            _send(self.out, {"partial": words})
        elif kind == END:
            self.finish()
        elif kind == ABANDON:
            self.drop()
        else:
            self.problem = self.problem or f"an unknown request {kind!r}"

    def finish(self) -> None:
        stream, self.stream = self.stream, None
        problem, self.problem = self.problem, ""
        if stream is None and not problem:
            problem = "a phrase ended that had not begun"
        if problem:
            if stream is not None:
                self._abandon(stream)
            _send(self.out, {"error": problem})
            return
        try:
            _send(self.out, {"text": stream.finish()})
        except Exception as exc:  # one bad phrase: say so, keep serving
            _send(self.out, {"error": _failed(exc)})

    def drop(self) -> None:
        stream, self.stream, self.problem = self.stream, None, ""
        if stream is not None:
            self._abandon(stream)

    @staticmethod
    def _abandon(stream) -> None:
        try:
            stream.abandon()
        except Exception:
            pass


NICENESS = 10   # where there is no idle class: recognition still yields to the call's audio


def background() -> str:
    """Run this process on spare CPU only: Linux's SCHED_IDLE (any other task that wakes up
    preempts it at once: the call's audio threads never wait for a recogniser), else nice 10.
    Measured with nice 10 alone: a few more playout under-runs with captions on, on 2 cores."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))   # type: ignore[attr-defined]
        return "idle"
    except (AttributeError, OSError):
        pass
    try:
        os.nice(NICENESS)
        return f"nice {NICENESS}"
    except (AttributeError, OSError):
        return "normal"


def main(argv: list[str]) -> int:
    background()
    out = sys.stdout.buffer
    sys.stdout = sys.stderr          # a stray print must not corrupt the protocol
    engine = argv[0] if argv else "pocketsphinx"
    model = argv[1] if len(argv) > 1 else None
    try:
        recognizer = make_recognizer(engine, model)
    except TranscriptionError as exc:
        _send(out, {"error": exc.message, "action": exc.action})
        return 1
    _send(out, {"label": recognizer.label, "sample_rate": recognizer.sample_rate})
    inp = sys.stdin.buffer
    phrases = _Phrases(recognizer, out)
    while True:
        try:
            payload = read_message(inp)
        except ValueError as exc:
            _send(out, {"error": str(exc)})
            return 2
        if payload is None:
            phrases.drop()
            return 0
        phrases.handle(payload[:1], payload[1:])
