"""The gateway's messages as typed data, and how they are encoded (strict in what we send)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from .codes import ErrorCode

MAX_MESSAGE_BYTES = 256 * 1024
"""Largest signaling frame either side accepts (an SDP is a few KiB)."""

SIGNAL_PATH = "/api/v1/webrtc/signal"
ICE_SERVERS_PATH = "/api/v1/ice-servers"



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


