"""The spec's modes and error codes, each code with words a person understands.

Also `clean_text`: the one way a gateway's own words (an error message, a close reason) are
made safe to show: control characters removed, whitespace folded, length capped.
"""

from __future__ import annotations

import enum
import unicodedata

UNKNOWN_CODE = "UNKNOWN"
"""What the JSON reports for an `error` frame whose code is missing or not in the spec."""

MAX_SHOWN_CHARS = 300


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




def clean_text(text: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """A remote party's text made safe to show and log: control and format characters dropped,
    runs of whitespace folded to one space, at most `limit` characters (an ellipsis marks a cut)."""
    if not isinstance(text, str):
        return ""
    kept = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    folded = " ".join(kept.split())
    return folded if len(folded) <= limit else folded[:limit - 1].rstrip() + "…"


def gateway_error_words(code: str, message: str) -> tuple[str, str]:
    """(what happened, what to do) for an `error` frame. A spec code has its own words; with a
    missing or unknown code the gateway's own message is shown, verbatim but cleaned."""
    what, action = explain(code)
    if ErrorCode.lookup(code) is not None:
        return what, action
    said = clean_text(message)
    head = what.rstrip(".") if code else "The gateway reported an error without a code"
    return (f"{head}: “{said}”" if said else f"{head}."), action
