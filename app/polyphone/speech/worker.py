"""`polyphone --asr-worker ENGINE [MODEL]`: the recogniser's process (speech/remote.py's other end).

Loads the recogniser, says so, then answers one phrase at a time until stdin closes. Its
stdout carries only protocol messages; anything a library prints goes to stderr.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from .remote import read_message, write_message
from .transcribe import TranscriptionError, make_recognizer


def _send(out, message: dict) -> None:
    write_message(out, json.dumps(message).encode())


def main(argv: list[str]) -> int:
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
    while True:
        try:
            payload = read_message(inp)
        except ValueError as exc:
            _send(out, {"error": str(exc)})
            return 2
        if payload is None:
            return 0
        try:
            text = recognizer.transcribe(np.frombuffer(payload, dtype=np.int16))
        except Exception as exc:  # one bad phrase: say so, keep serving
            _send(out, {"error": f"recognition failed: {type(exc).__name__}: {exc}"[:300]})
            continue
        _send(out, {"text": text})
