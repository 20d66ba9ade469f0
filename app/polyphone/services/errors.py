"""What the error banner says: for every failure, what happened and what to do.

Pure (no Qt): `explain(error)` turns an engine `CallError` (or an `AppError`,
the bridge's own failures before a call starts) into words and one action.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import protocol
from ..engine.events import CallError, ErrorKind

__all__ = ["AppError", "CallError", "ErrorKind", "Explanation", "PrepError", "explain"]

# The banner's action button: what it opens.
EDIT_TOKEN = "edit_token"          # the profile dialog, token field focused
EDIT_PROFILE = "edit_profile"      # the profile dialog
EDIT_ICE = "edit_ice"              # the profile dialog, ICE servers
CHOOSE_DEVICE = "choose_device"    # the microphone picker
CALL_AGAIN = "call_again"

ACTION_LABELS = {
    EDIT_TOKEN: "Open token field",
    EDIT_PROFILE: "Edit profile",
    EDIT_ICE: "Edit ICE servers",
    CHOOSE_DEVICE: "Choose a device",
    CALL_AGAIN: "Call again",
}


@dataclass(frozen=True)
class AppError(CallError):
    """A failure the bridge finds before the engine runs; `hint` picks the banner's action."""

    hint: str = ""


class PrepError(Exception):
    """A failure before the engine runs."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class Explanation:
    title: str
    what: str
    todo: str
    action: str = ""          # one of the action keys above, or ""
    code: str = ""            # the gateway code or the error kind, for the log and history

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, "")


SILENT_AGENT = "The agent is silent (no audio packets); the call is still up."

_GATEWAY = {
    protocol.ErrorCode.UNAUTHORIZED: ("Token rejected", EDIT_TOKEN),
    protocol.ErrorCode.INVALID_ARGUMENT: ("Call request rejected", EDIT_PROFILE),
    protocol.ErrorCode.INVALID_MESSAGE: ("Message not understood by the gateway", ""),
    protocol.ErrorCode.HANDLER_ERROR: ("The gateway failed", CALL_AGAIN),
    protocol.ErrorCode.MEDIA_BRIDGE_FAILURE: ("Audio could not be set up", EDIT_ICE),
    protocol.ErrorCode.AGENT_FAILURE: ("Agent unreachable", EDIT_PROFILE),
}

_KINDS = {
    ErrorKind.NETWORK: ("Cannot reach the gateway", "Check your internet connection and the "
                        "profile's region or URL, then call again.", EDIT_PROFILE),
    ErrorKind.ICE: ("Audio connection failed", "Check that your network allows UDP, or add a "
                    "TURN server to the profile.", EDIT_ICE),
    ErrorKind.CLOSED: ("The gateway ended the call", "Call again; if it persists, report it with "
                       "the event log.", CALL_AGAIN),
    ErrorKind.GATEWAY: ("The gateway reported an error", "Call again; if it persists, report it "
                        "with the event log.", CALL_AGAIN),
    ErrorKind.TIMEOUT: ("Timed out", "Check your network connection and call again.", CALL_AGAIN),
    ErrorKind.PROTOCOL: ("Unexpected reply from the gateway", "Call again; if it persists, "
                         "report it with the event log.", CALL_AGAIN),
    ErrorKind.CONFIG: ("The profile needs attention", "Open the profile and fix it.", EDIT_PROFILE),
    ErrorKind.DEVICE: ("Sound device problem", "Choose another microphone or speaker, or plug the "
                       "device back in.", CHOOSE_DEVICE),
    ErrorKind.KEYRING: ("System keyring unavailable", "Unlock or install your desktop's keyring, "
                        "or enter a token for this session only in the profile.", EDIT_TOKEN),
    ErrorKind.INTERNAL: ("Polyphone hit an internal error", "Call again; if it persists, report "
                         "it with the event log.", CALL_AGAIN),
}


def explain(error: CallError) -> Explanation:
    hint = getattr(error, "hint", "")
    if error.kind is ErrorKind.GATEWAY and error.code:
        known = protocol.ErrorCode.lookup(error.code)
        what, todo = protocol.explain(error.code)
        title, action = _GATEWAY.get(known, ("The gateway reported an error", CALL_AGAIN)) \
            if known else ("The gateway reported an error", CALL_AGAIN)
        return Explanation(f"{title} ({error.code})", error.message or what, error.action or todo,
                           hint or action, error.code)
    title, todo, action = _KINDS.get(error.kind, _KINDS[ErrorKind.INTERNAL])
    return Explanation(title, error.message, error.action or todo, hint or action, error.kind.value)
