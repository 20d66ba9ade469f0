"""What to call and how long to wait: the engine's input, built from a profile."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .. import protocol
from .ice import IceServer


@dataclass(frozen=True)
class Timeouts:
    ws_open: float = 10.0          # socket open (TCP + TLS + upgrade)
    connect: float = 30.0          # start -> CONNECTED, overall
    answer: float = 15.0           # offer sent -> answer
    disconnect_grace: float = 5.0  # peer `disconnected` -> give up
    media_stall: float = 2.0       # nothing from the gateway for this long -> MediaStalled ("media lost")
    media_lost: float = 15.0       # nothing for this long -> the call fails (a Wi-Fi drop of ~10 s survives)
    agent_silent: float = 2.0      # no RTP, the gateway still there -> AgentSilence (never ends the call)
    peer_down_settle: float = 1.0  # peer failed/closed -> wait this long for the gateway to say why
    close_send: float = 1.0        # best effort `close` at teardown


@dataclass(frozen=True)
class CallRequest:
    url: str
    token: str = field(repr=False)
    mode: str | None = None
    call_sid: str | None = None    # None: a fresh UUID per call
    caller: str | None = None
    callee: str | None = None
    account_id: str | None = None
    project_id: str | None = None
    variant_id: str | None = None
    agent_version_override: protocol.AgentVersionOverride | None = None
    ice_servers: tuple[IceServer, ...] = ()
    fetch_ice_servers: bool = True
    ca_file: str | None = None
    timeouts: Timeouts = Timeouts()

    def offer(self, sdp: str, call_sid: str) -> protocol.Offer:
        return protocol.Offer(
            sdp=sdp, auth_token=self.token, session_id="", mode=self.mode, call_sid=call_sid,
            caller=self.caller, callee=self.callee, account_id=self.account_id,
            project_id=self.project_id, variant_id=self.variant_id,
            agent_version_override=self.agent_version_override)

    def new_call_sid(self) -> str:
        return self.call_sid or str(uuid.uuid4())


def request_from_profile(profile, url: str, token: str, *, variant_id: str | None = None,
                         mode: str | None = None, turn_credential=lambda url: None,
                         timeouts: Timeouts | None = None) -> CallRequest:
    """A CallRequest from a `config.Profile`; `turn_credential(url)` reads the keyring."""
    servers = []
    for entry in profile.ice_servers:
        cred = turn_credential(entry.urls[0]) if entry.username else None
        servers.append(IceServer(tuple(entry.urls), entry.username or None, cred))
    avo = None
    if profile.artifact_version or profile.lambda_deployment_version:
        avo = protocol.AgentVersionOverride(profile.artifact_version or None,
                                            profile.lambda_deployment_version or None)
    return CallRequest(
        url=url, token=token, mode=mode or profile.mode or None,
        call_sid=profile.call_sid or None, caller=profile.caller or None,
        callee=profile.callee or None, account_id=profile.account_id or None,
        project_id=profile.project_id or None,
        variant_id=(variant_id if variant_id is not None else profile.variant_id) or None,
        agent_version_override=avo, ice_servers=tuple(servers),
        fetch_ice_servers=profile.fetch_ice_servers, ca_file=profile.ca_file or None,
        timeouts=timeouts or Timeouts())
