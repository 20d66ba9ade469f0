"""Parsing the gateway's frames: liberal in what a real server may send, never a crash.

`parse()` returns one of the message dataclasses or raises `ProtocolError`; nothing else
escapes it, whatever bytes arrive. Where the spec is silent, what PolyAI's own SDKs accept
is accepted: `close` and `error` without a sessionId, `error` without `data` or `code` (its
message may stand in `data.message`, `data` itself or the top level), a candidate's
`sdpMLineIndex` as a string of digits, a null candidate (end-of-candidates).
"""

from __future__ import annotations

import json
from typing import Any

from .codes import ErrorCode, Mode
from .messages import (
    _OFFER_STRINGS,
    MAX_MESSAGE_BYTES,
    AgentVersionOverride,
    Answer,
    Candidate,
    Close,
    Error,
    IceCandidate,
    Message,
    Offer,
    Pong,
)


class ProtocolError(Exception):
    """A frame that is not a valid message. `code` is what a gateway answers with."""

    def __init__(self, reason: str, code: ErrorCode = ErrorCode.INVALID_MESSAGE,
                 msg_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.msg_type = msg_type


class UnknownMessageType(ProtocolError):
    """A well-formed frame whose `type` this side does not handle: log and drop."""




def parse(raw: str | bytes | bytearray) -> Message:
    """Parse one frame. Raises ProtocolError (only) when it is not a valid message."""
    try:
        return _parse(raw)
    except ProtocolError:
        raise
    except Exception as exc:  # a bug here must not take a caller down
        raise ProtocolError(f"unreadable message ({type(exc).__name__})") from None


def _parse(raw: str | bytes | bytearray) -> Message:
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message too large ({len(raw)} bytes)")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("message is not UTF-8 text") from None
    if not isinstance(raw, str):
        raise ProtocolError("message is not text")
    if len(raw) > MAX_MESSAGE_BYTES or (
            len(raw) * 4 > MAX_MESSAGE_BYTES
            and len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES):
        raise ProtocolError("message too large (over "
                            f"{MAX_MESSAGE_BYTES // 1024} KiB)")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("message is not a JSON object")
    mtype = obj.get("type")
    if mtype is None:
        raise ProtocolError("message has no 'type'")
    if not isinstance(mtype, str):
        raise ProtocolError("'type' is not a string")
    parser = _PARSERS.get(mtype)
    if parser is None:
        raise UnknownMessageType(f"unknown message type {mtype[:40]!r}", msg_type=mtype[:40])
    return parser(obj)


def _session_id(obj: dict[str, Any], mtype: str, *, allow_missing: bool = False) -> str:
    if "sessionId" not in obj:
        if allow_missing:
            return ""
        raise ProtocolError(f"{mtype}: missing 'sessionId'", msg_type=mtype)
    sid = obj["sessionId"]
    if sid is None:
        return ""
    if not isinstance(sid, str):
        raise ProtocolError(f"{mtype}: 'sessionId' is not a string",
                            ErrorCode.INVALID_ARGUMENT, mtype)
    return sid


def _data(obj: dict[str, Any], mtype: str) -> dict[str, Any]:
    if "data" not in obj or obj["data"] is None:
        raise ProtocolError(f"{mtype}: missing 'data'", msg_type=mtype)
    data = obj["data"]
    if not isinstance(data, dict):
        raise ProtocolError(f"{mtype}: 'data' is not an object", msg_type=mtype)
    return data


def _opt_str(obj: dict[str, Any], key: str, mtype: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{mtype}: '{key}' must be a string", ErrorCode.INVALID_ARGUMENT, mtype)
    return value


def _sdp(obj: dict[str, Any], mtype: str) -> str:
    data = _data(obj, mtype)
    sdp = data.get("sdp")
    if sdp is None:
        raise ProtocolError(f"{mtype}: missing 'data.sdp'", msg_type=mtype)
    if not isinstance(sdp, str):
        raise ProtocolError(f"{mtype}: 'data.sdp' must be a string", ErrorCode.INVALID_ARGUMENT, mtype)
    kind = data.get("type")
    if kind is not None and kind != mtype:
        raise ProtocolError(f"{mtype}: 'data.type' is {str(kind)[:20]!r}", ErrorCode.INVALID_ARGUMENT, mtype)
    return sdp


def _parse_offer(obj: dict[str, Any]) -> Offer:
    sid = _session_id(obj, "offer", allow_missing=True)
    sdp = _sdp(obj, "offer")
    token = _opt_str(obj, "authToken", "offer")
    strings = {attr: _opt_str(obj, wire, "offer") for wire, attr in _OFFER_STRINGS.items()}
    mode = strings["mode"]
    if mode is not None and mode not in {m.value for m in Mode}:
        raise ProtocolError(f"offer: unknown mode {mode[:30]!r}", ErrorCode.INVALID_ARGUMENT, "offer")
    avo = None
    raw_avo = obj.get("agentVersionOverride")
    if raw_avo is not None:
        if not isinstance(raw_avo, dict):
            raise ProtocolError("offer: 'agentVersionOverride' must be an object",
                                ErrorCode.INVALID_ARGUMENT, "offer")
        avo = AgentVersionOverride(
            artifact_version=_opt_str(raw_avo, "artifactVersion", "offer"),
            lambda_deployment_version=_opt_str(raw_avo, "lambdaDeploymentVersion", "offer"),
        )
    return Offer(sdp=sdp, auth_token=token, session_id=sid, agent_version_override=avo, **strings)


def _parse_answer(obj: dict[str, Any]) -> Answer:
    sid = _session_id(obj, "answer")
    if not sid:
        raise ProtocolError("answer: empty 'sessionId'", msg_type="answer")
    return Answer(session_id=sid, sdp=_sdp(obj, "answer"))


def _mline_index(data: dict[str, Any]) -> int | None:
    index = data.get("sdpMLineIndex")
    if isinstance(index, str) and index.strip().isdigit():  # some servers send "0"
        return int(index.strip())
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise ProtocolError("ice-candidate: 'data.sdpMLineIndex' must be a whole number ≥ 0",
                            ErrorCode.INVALID_ARGUMENT, "ice-candidate")
    return index


def _parse_candidate(obj: dict[str, Any]) -> IceCandidate:
    sid = _session_id(obj, "ice-candidate")
    data = _data(obj, "ice-candidate")
    if "candidate" in data and data["candidate"] is None:
        data = {**data, "candidate": ""}  # a null candidate: end-of-candidates
    cand = data.get("candidate")
    if not isinstance(cand, str):
        raise ProtocolError("ice-candidate: 'data.candidate' must be a string",
                            ErrorCode.INVALID_MESSAGE if cand is None else ErrorCode.INVALID_ARGUMENT,
                            "ice-candidate")
    mid = data.get("sdpMid")
    if isinstance(mid, int) and not isinstance(mid, bool):
        mid = str(mid)
    if mid is not None and not isinstance(mid, str):
        raise ProtocolError("ice-candidate: 'data.sdpMid' must be a string",
                            ErrorCode.INVALID_ARGUMENT, "ice-candidate")
    return IceCandidate(session_id=sid, candidate=Candidate(cand, mid, _mline_index(data)))


def _parse_close(obj: dict[str, Any]) -> Close:
    return Close(session_id=_session_id(obj, "close", allow_missing=True))


def _text(value: Any) -> str:
    """A field a server meant as text: a string, or a number or true/false written out."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _parse_error(obj: dict[str, Any]) -> Error:
    """Any error frame is an error: with or without data, code or message (as both SDKs do)."""
    sid = _session_id(obj, "error", allow_missing=True)
    raw = obj.get("data")
    data = raw if isinstance(raw, dict) else {}
    code = _text(data.get("code")) or _text(obj.get("code"))
    message = next((m for m in (_text(data.get("message")), _text(raw), _text(obj.get("message")),
                                _text(data.get("error")), _text(obj.get("error"))) if m), "")
    return Error(session_id=sid, code=code[:64], message=message)


def _parse_pong(obj: dict[str, Any]) -> Pong:
    return Pong(session_id=_session_id(obj, "pong", allow_missing=True))


_PARSERS = {
    "offer": _parse_offer,
    "answer": _parse_answer,
    "ice-candidate": _parse_candidate,
    "close": _parse_close,
    "error": _parse_error,
    "pong": _parse_pong,
}
