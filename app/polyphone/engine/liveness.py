"""Is the call alive? RTP from the agent, or anything else from the gateway.

A call is alive while anything arrives from the gateway: RTP, RTCP or ICE consent (STUN).
An agent that stops sending RTP while it is silent (Opus DTX, a paused agent) still sends RTCP
and answers consent checks, so RTP silence alone only says "the agent is silent" and never ends
the call. When everything stops (a dead network), "media lost" is said after `stall` seconds
and the call fails after `lost` seconds: the grace a Wi-Fi drop needs.

`Liveness.update(now, rtp_at, heard_at)` is pure: it takes the times of the last RTP frame and
of the last datagram or STUN request of any kind (None where the stack cannot tell: then RTP
is all there is, as before) and returns the events to emit, or `LOST` when the grace is over.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import AgentSilence, Event, MediaResumed, MediaStalled

LOST = "lost"


@dataclass
class Liveness:
    stall: float = 2.0           # nothing at all for this long: "media lost"
    lost: float = 15.0           # nothing at all for this long: the call fails
    silent: float = 2.0          # no RTP (other traffic still arriving) for this long: "silent"
    _lost_since: float | None = None
    _silent_since: float | None = None

    @property
    def media_lost(self) -> bool:
        return self._lost_since is not None

    @property
    def agent_silent(self) -> bool:
        return self._silent_since is not None

    def update(self, now: float, rtp_at: float, heard_at: float | None) -> list[Event] | str:
        last_any = max(rtp_at, heard_at) if heard_at is not None else rtp_at
        out: list[Event] = []
        if now - last_any >= self.stall:
            if self._lost_since is None:
                self._lost_since = last_any
                return [MediaStalled(now - last_any)]
            return LOST if now - last_any >= self.lost else out
        if self._lost_since is not None:
            out.append(MediaResumed(last_any - self._lost_since))
            self._lost_since = None
        quiet = now - rtp_at
        if quiet >= self.silent and self._silent_since is None:
            self._silent_since = rtp_at
            out.append(AgentSilence(True, quiet))
        elif quiet < self.silent and self._silent_since is not None:
            out.append(AgentSilence(False, rtp_at - self._silent_since))
            self._silent_since = None
        return out


def describe(event: AgentSilence | MediaResumed | MediaStalled, grace: float) -> str:
    """The log line that goes with a liveness event."""
    if isinstance(event, MediaStalled):
        return (f"media lost: nothing from the gateway for {event.seconds:.1f} s; "
                f"waiting up to {grace:g} s for it to return")
    if isinstance(event, MediaResumed):
        return f"the gateway is back after {event.gap_seconds:.1f} s"
    if event.active:
        return f"the agent is silent (no audio packets for {event.seconds:.1f} s; the gateway is still there)"
    return f"audio from the agent resumed after {event.seconds:.1f} s of silence"
