"""The signaling socket's close codes (RFC 6455) as the gateway's words.

A server ends a call its own way by closing the socket: PolyAI's iOS SDK takes 1000 as a clean
end and 1002, 1003, 1007, 1008, 1009 and 4xxx as terminal, and reconnects on anything else.
Here: 1000 and 1001 are a hang-up, the protocol and policy codes and 4000-4999 are terminal (no
reconnect), and everything else (1006: no close frame, 1005, 1012-1015, ...) is a network drop
that is resumed.
"""

from __future__ import annotations

import enum

from .codes import clean_text


class CloseKind(str, enum.Enum):
    HANGUP = "hangup"        # the far end ended the call on purpose
    TERMINAL = "terminal"    # the far end refused or broke off: do not reconnect
    DROPPED = "dropped"      # the connection was lost: resume on a new socket


_NAMES = {
    1000: "normal closure", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
    1005: "no status", 1006: "abnormal closure", 1007: "invalid payload", 1008: "policy violation",
    1009: "message too big", 1010: "mandatory extension", 1011: "internal error",
    1012: "service restart", 1013: "try again later", 1014: "bad gateway",
}

_ACTIONS = {
    1002: "Update Polyphone; if it persists, report it with the call's event log.",
    1003: "Update Polyphone; if it persists, report it with the call's event log.",
    1007: "Update Polyphone; if it persists, report it with the call's event log.",
    1008: "The gateway refused the call by policy (often a wrong or expired token, or too many "
          "calls): check the profile's token, then call again later.",
    1009: "Report it with the call's event log: a signaling message was too large for the gateway.",
    1010: "Update Polyphone; if it persists, report it with the call's event log.",
    1011: "The gateway hit an internal error: call again in a moment.",
}
_APP_ACTION = "Call again; if it persists, report it with the call's event log and the code."


def classify(code: int | None) -> CloseKind:
    if code in (1000, 1001):
        return CloseKind.HANGUP
    if code in (1002, 1003, 1007, 1008, 1009, 1010, 1011) or (code is not None and 4000 <= code <= 4999):
        return CloseKind.TERMINAL
    return CloseKind.DROPPED


def describe(code: int | None, reason: str = "") -> str:
    """`code 1008 policy violation: “reason”`, safe to show (the reason is cleaned)."""
    if code is None:
        return "no close code"
    name = _NAMES.get(code, "the gateway's own code" if 4000 <= code <= 4999 else "")
    said = clean_text(reason, 120)
    return f"code {code}" + (f" {name}" if name else "") + (f": “{said}”" if said else "")


def action(code: int | None) -> str:
    return _ACTIONS.get(code or 0, _APP_ACTION)
