"""The gateway's wire format: typed messages, parse and encode, error codes.

Pure: no I/O, no asyncio. Shared by the client (engine) and the local gateway.
`parse()` returns one of the message dataclasses or raises `ProtocolError`;
nothing else escapes it, whatever bytes arrive.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Union

MAX_MESSAGE_BYTES = 256 * 1024
"""Largest signaling frame either side accepts (an SDP is a few KiB)."""

SIGNAL_PATH = "/api/v1/webrtc/signal"
ICE_SERVERS_PATH = "/api/v1/ice-servers"


class Mode(str, enum.Enum):
    END_TO_END = "end-to-end"
    TRADITIONAL = "traditional"
    ECHO = "echo"


class ErrorCode(str, enum.Enum):
    """The six error codes of the spec, each with words a person understands."""

    UNAUTHORIZED = "UNAUTHORIZED"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    HANDLER_ERROR = "HANDLER_ERROR"
    MEDIA_BRIDGE_FAILURE = "MEDIA_BRIDGE_FAILURE"
    AGENT_FAILURE = "AGENT_FAILURE"

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self][0]

    @property
    def action(self) -> str:
        return _EXPLANATIONS[self][1]

    @classmethod
    def lookup(cls, code: str) -> "ErrorCode | None":
        try:
            return cls(code)
        except ValueError:
            return None


_EXPLANATIONS: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.UNAUTHORIZED: (
        "The gateway rejected the authentication token (it is missing, wrong or expired).",
        "Open the profile, paste a valid token for this project and call again.",
    ),
    ErrorCode.INVALID_ARGUMENT: (
        "The gateway rejected a field of the call request (for example an unknown mode, "
        "account, project or variant).",
        "Check the profile's mode, account, project, variant and build fields.",
    ),
    ErrorCode.INVALID_MESSAGE: (
        "The gateway could not understand a signaling message Polyphone sent.",
        "Update Polyphone; if it persists, report it with the call's event log.",
    ),
    ErrorCode.HANDLER_ERROR: (
        "The gateway failed while handling the call's signaling (the session may have expired).",
        "Call again; if it keeps happening, the gateway may be having problems.",
    ),
    ErrorCode.MEDIA_BRIDGE_FAILURE: (
        "The gateway could not set up the audio connection for this call.",
        "Check your network allows UDP or configure a TURN server, then call again.",
    ),
    ErrorCode.AGENT_FAILURE: (
        "The gateway could not reach the voice agent.",
        "Check the agent is deployed for this account, project and variant, then call again.",
    ),
}


def explain(code: str) -> tuple[str, str]:
    """(what happened, what to do) for any code string, known or not."""
    known = ErrorCode.lookup(code)
    if known is not None:
        return known.explanation, known.action
    return (
        f"The gateway reported an error Polyphone does not know ({code[:40]!r}).",
        "Call again; if it persists, report it with the call's event log.",
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


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True)
class AgentVersionOverride:
    artifact_version: str | None = None
    lambda_deployment_version: str | None = None

    def to_wire(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.artifact_version:
            out["artifactVersion"] = self.artifact_version
        if self.lambda_deployment_version:
            out["lambdaDeploymentVersion"] = self.lambda_deployment_version
        return out


@dataclass(frozen=True)
class Candidate:
    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True)
class Offer:
    sdp: str
    auth_token: str | None = field(default=None, repr=False)
    session_id: str = ""
    mode: str | None = None
    call_sid: str | None = None
    caller: str | None = None
    callee: str | None = None
    account_id: str | None = None
    project_id: str | None = None
    variant_id: str | None = None
    agent_version_override: AgentVersionOverride | None = None
    type: str = field(default="offer", init=False)


@dataclass(frozen=True)
class Answer:
    session_id: str
    sdp: str
    type: str = field(default="answer", init=False)


@dataclass(frozen=True)
class IceCandidate:
    session_id: str
    candidate: Candidate
    type: str = field(default="ice-candidate", init=False)


@dataclass(frozen=True)
class Close:
    session_id: str
    type: str = field(default="close", init=False)


@dataclass(frozen=True)
class Error:
    session_id: str
    code: str
    message: str = ""
    type: str = field(default="error", init=False)

    @property
    def error_code(self) -> ErrorCode | None:
        return ErrorCode.lookup(self.code)


@dataclass(frozen=True)
class Pong:
    session_id: str = ""
    type: str = field(default="pong", init=False)


Message = Union[Offer, Answer, IceCandidate, Close, Error, Pong]

# Optional string fields of an offer: wire name -> dataclass attribute.
_OFFER_STRINGS = {
    "mode": "mode",
    "callSid": "call_sid",
    "caller": "caller",
    "callee": "callee",
    "accountId": "account_id",
    "projectId": "project_id",
    "variantId": "variant_id",
}


# --- encode -------------------------------------------------------------------


def to_wire(msg: Message) -> dict[str, Any]:
    """The JSON object for a message (optional fields left out when unset)."""
    out: dict[str, Any] = {"type": msg.type, "sessionId": msg.session_id}
    if isinstance(msg, Offer):
        out["data"] = {"type": "offer", "sdp": msg.sdp}
        out["authToken"] = msg.auth_token or ""
        for wire, attr in _OFFER_STRINGS.items():
            value = getattr(msg, attr)
            if value:
                out[wire] = value
        if msg.agent_version_override is not None:
            avo = msg.agent_version_override.to_wire()
            if avo:
                out["agentVersionOverride"] = avo
    elif isinstance(msg, Answer):
        out["data"] = {"type": "answer", "sdp": msg.sdp}
    elif isinstance(msg, IceCandidate):
        out["data"] = {
            "candidate": msg.candidate.candidate,
            "sdpMid": msg.candidate.sdp_mid,
            "sdpMLineIndex": msg.candidate.sdp_mline_index,
        }
    elif isinstance(msg, Error):
        out["data"] = {"code": msg.code, "message": msg.message}
    return out


def encode(msg: Message) -> str:
    return json.dumps(to_wire(msg), separators=(",", ":"))


# --- parse --------------------------------------------------------------------


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


def _parse_candidate(obj: dict[str, Any]) -> IceCandidate:
    sid = _session_id(obj, "ice-candidate")
    data = _data(obj, "ice-candidate")
    cand = data.get("candidate")
    if not isinstance(cand, str):
        raise ProtocolError("ice-candidate: 'data.candidate' must be a string",
                            ErrorCode.INVALID_MESSAGE if cand is None else ErrorCode.INVALID_ARGUMENT,
                            "ice-candidate")
    mid = data.get("sdpMid")
    if mid is not None and not isinstance(mid, str):
        raise ProtocolError("ice-candidate: 'data.sdpMid' must be a string",
                            ErrorCode.INVALID_ARGUMENT, "ice-candidate")
    index = data.get("sdpMLineIndex")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise ProtocolError("ice-candidate: 'data.sdpMLineIndex' must be a whole number ≥ 0",
                            ErrorCode.INVALID_ARGUMENT, "ice-candidate")
    return IceCandidate(session_id=sid, candidate=Candidate(cand, mid, index))


def _parse_close(obj: dict[str, Any]) -> Close:
    return Close(session_id=_session_id(obj, "close"))


def _parse_error(obj: dict[str, Any]) -> Error:
    sid = _session_id(obj, "error", allow_missing=True)
    data = _data(obj, "error")
    code = data.get("code")
    if code is None or code == "":
        raise ProtocolError("error: missing 'data.code'", msg_type="error")
    if not isinstance(code, str):
        raise ProtocolError("error: 'data.code' must be a string", ErrorCode.INVALID_ARGUMENT, "error")
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise ProtocolError("error: 'data.message' must be a string",
                            ErrorCode.INVALID_ARGUMENT, "error")
    return Error(session_id=sid, code=code, message=message or "")


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
