"""The gateway's wire format, pure (no I/O, no asyncio), shared by the engine and the local gateway.

- `codes`: the spec's modes and error codes with words a person understands; `clean_text`.
- `messages`: the typed messages and their encoding (strict in what we send).
- `parse`: frames into messages (liberal in what a real server may send, never a crash).
- `closes`: the signaling socket's close codes: hang-up, terminal, or a drop to resume.
"""

from .closes import CloseKind
from .codes import MAX_SHOWN_CHARS, UNKNOWN_CODE, ErrorCode, Mode, clean_text, explain, gateway_error_words
from .messages import (
    ICE_SERVERS_PATH,
    MAX_MESSAGE_BYTES,
    SIGNAL_PATH,
    AgentVersionOverride,
    Answer,
    Candidate,
    Close,
    Error,
    IceCandidate,
    Message,
    Offer,
    Pong,
    encode,
    to_wire,
)
from .parse import ProtocolError, UnknownMessageType, _parse, parse

__all__ = [
    "ICE_SERVERS_PATH", "MAX_MESSAGE_BYTES", "MAX_SHOWN_CHARS", "SIGNAL_PATH", "UNKNOWN_CODE",
    "AgentVersionOverride", "Answer", "Candidate", "Close", "CloseKind", "Error", "ErrorCode",
    "IceCandidate", "Message", "Mode", "Offer", "Pong", "ProtocolError", "UnknownMessageType",
    "_parse", "clean_text", "encode", "explain", "gateway_error_words", "parse", "to_wire",
]
