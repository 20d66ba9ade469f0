"""Frozen dataclasses the engine emits. The GUI bridge and the CLI only see these."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Callable, Union

from ..audio.events import (  # noqa: F401 (re-exported)
    AudioLevels,
    AudioStats,
    DeviceChanged,
    LogLine,
    TurnLatency,
)

YOU_HUNG_UP = "You hung up."
AGENT_HUNG_UP = "The agent ended the call."  # a `close` frame, or the socket closed with 1000/1001


class CallState(str, enum.Enum):
    IDLE = "IDLE"
    CONNECTING = "CONNECTING"
    NEGOTIATING = "NEGOTIATING"
    CONNECTED = "CONNECTED"
    ENDING = "ENDING"
    ENDED = "ENDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (CallState.ENDED, CallState.FAILED)


class ErrorKind(str, enum.Enum):
    GATEWAY = "gateway"      # the gateway sent an `error` frame
    CLOSED = "closed"        # the gateway closed the socket with a terminal code (or before connecting)
    NETWORK = "network"      # socket could not open / dropped for good
    ICE = "ice"              # media path failed
    TIMEOUT = "timeout"      # a named timer fired
    PROTOCOL = "protocol"    # the peer spoke nonsense
    CONFIG = "config"        # bad URL, refused ws://, missing token
    DEVICE = "device"
    KEYRING = "keyring"
    INTERNAL = "internal"


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class StateChanged:
    state: CallState
    previous: CallState
    reason: str = ""
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class ConnectionChanged:
    """A transport state: component is signaling, ice-gathering, ice-connection, dtls or peer."""

    component: str
    state: str
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class SessionStarted:
    session_id: str
    call_sid: str
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class CandidateInfo:
    type: str          # host | srflx | prflx | relay
    protocol: str      # udp | tcp
    address: str
    port: int


@dataclass(frozen=True)
class SelectedPair:
    local: CandidateInfo
    remote: CandidateInfo
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class StatsSample:
    """One second of media statistics; None where the stack has no figure yet."""

    rtt_ms: float | None = None
    jitter_ms: float | None = None
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    fraction_lost: float | None = None
    send_kbps: float = 0.0
    recv_kbps: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    codec: str | None = None
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class MediaStalled:
    """Nothing (no RTP, RTCP or ICE consent) has arrived from the gateway for `seconds`."""

    seconds: float
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class MediaResumed:
    gap_seconds: float
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class AgentSilence:
    """The agent stopped sending audio packets while the gateway is still there (active), or its
    audio came back (not active; `seconds` is how long it was silent). Never ends the call."""

    active: bool
    seconds: float
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class CallError:
    kind: ErrorKind
    message: str                 # what happened, one sentence, no secrets
    action: str = ""             # what the person can do about it
    code: str | None = None      # the gateway's error code, when there is one ("" if it sent none)
    detail: str = ""             # the gateway's or library's own words
    close_code: int | None = None  # the websocket close code, when the gateway closed the socket
    t: float = field(default_factory=_now)

    def __str__(self) -> str:
        head = f"{self.code}: {self.message}" if self.code else self.message
        return f"{head} {self.action}".strip()


@dataclass(frozen=True)
class QualityWarning:
    """A call-quality figure crossed its threshold (active) or recovered (engine/quality.py)."""

    kind: str        # rtt | loss | jitter | agent-echo | mic-clipping | mic-silent
    active: bool
    value: float
    threshold: float
    message: str     # what is wrong and what to do, or that it recovered
    t: float = field(default_factory=_now)


Event = Union[StateChanged, ConnectionChanged, SessionStarted, SelectedPair, StatsSample,
              MediaStalled, MediaResumed, AgentSilence, CallError, LogLine, AudioLevels, TurnLatency,
              AudioStats, DeviceChanged, QualityWarning]

Listener = Callable[[Event], None]
