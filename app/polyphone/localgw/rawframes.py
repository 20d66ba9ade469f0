"""What the local gateway reads from a client's frame as raw JSON, beside `protocol.parse`."""

from __future__ import annotations

import json
from typing import Any


def _object(raw: str | bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except Exception:
        return None
    return obj if isinstance(obj, dict) else None


def frame_session_id(raw: str | bytes) -> str:
    """The sessionId of a frame that failed to parse, when it has a readable one."""
    obj = _object(raw)
    sid = obj.get("sessionId") if obj is not None else None
    return sid[:128] if isinstance(sid, str) else ""


def names_no_session(raw: str | bytes) -> bool:
    """True when the frame is a JSON object without a `sessionId` key at all.

    The spec requires the key in every client message; the parser lets a bare
    `{"type":"close"}` through (real servers send one), so the gateway checks.
    """
    obj = _object(raw)
    return obj is not None and "sessionId" not in obj
