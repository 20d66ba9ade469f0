"""Misbehaviour the local gateway can inject, so clients are tested against it."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Faults:
    """Misbehaviour to inject (all off by default)."""

    answer_delay: float = 0.0               # seconds before sending the answer
    never_answer: bool = False              # accept offers, never reply
    drop_socket_after: float | None = None  # abort the TCP connection N s after the answer (session survives)
    error_code: str | None = None           # answer every offer with this error code instead
    malformed_frames: bool = False          # after the answer, send a few malformed frames
    close_after: float | None = None        # send `close` N s after the answer, then end the session
    candidates_before_answer: bool = False  # send the ice-candidate frames before the answer


def malformed_frame_texts(session_id: str) -> list[str]:
    """Frames a gateway must never send: bad JSON, unknown type, missing fields."""
    return [
        "this is not JSON {",
        json.dumps({"type": "no-such-type", "sessionId": session_id}),
        json.dumps({"type": "ice-candidate", "sessionId": session_id}),   # no data
        json.dumps({"sessionId": session_id, "data": {}}),                # no type
        "[1, 2, 3]",
    ]
