"""The one way to turn "call this agent" into the engine's `CallRequest`.

The window, `polyphone call`, `polyphone run`, the self-test and load runs all describe what
to call as a `Target` (a profile by name and/or a URL, plus their overrides) and hand it to
`RequestBuilder.build`, which:

- loads and checks the profile (the built-in demo agent even if the person deleted it);
- for a remote gateway, reads the token and TURN credentials (keyring, the session-only
  store, `POLYPHONE_TOKEN`) in a worker thread, at that moment;
- for the demo profile, or no profile and no URL, starts the embedded local gateway;
- registers every secret with the redactor before anything can print it.

Each failure is a `PrepError` carrying an `AppError` (what happened, what to do).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Callable

from .. import config, protocol
from ..engine.request import CallRequest, Timeouts, request_from_profile
from . import call_setup
from .errors import EDIT_TOKEN, AppError, ErrorKind, PrepError
from .local_gateway import EmbeddedGateway
from .redact import Redactor
from .tokens import TokenVault

Log = Callable[[str, str, str], None]   # (level, source, text); may be called from a worker thread
AD_HOC = "command line"                 # the profile name of a target given only by URL


@dataclass(frozen=True)
class Target:
    """What to call. Empty fields take the profile's value."""

    profile: str | None = None           # a profile's name; None: `url`, or the embedded gateway
    url: str | None = None               # a signaling URL instead of the profile's
    variant_name: str = ""               # one of the profile's named variants (the window's picker)
    variant_id: str | None = None        # a variantId as given (command line, scripts)
    mode: str | None = None
    agent_version_override: protocol.AgentVersionOverride | None = None
    ca_file: str | None = None
    fetch_ice_servers: bool = True       # False: never ask the gateway for ICE servers
    timeouts: Timeouts | None = None
    prefer_environment: bool = False     # POLYPHONE_TOKEN before the keyring (command line, CI)


class RequestBuilder:
    def __init__(self, profiles: config.ProfileStore, vault: TokenVault, gateway: EmbeddedGateway,
                 redact: Redactor, log: Log = lambda *_a: None) -> None:
        self.profiles, self.vault, self.gateway, self.redact = profiles, vault, gateway, redact
        self.log = log
        redact.add(gateway.token)

    async def build(self, target: Target) -> CallRequest:
        profile = call_setup.load_profile(self.profiles, target.profile) if target.profile else None
        chosen = target.variant_id
        if profile is not None and target.variant_name:
            chosen = call_setup.variant_id(profile, target.variant_name, self.log) or chosen
        if target.url or (profile is not None and not profile.is_local):
            url = target.url or profile.signal_url()  # type: ignore[union-attr]
            profile = profile or config.Profile(name=AD_HOC, region=config.CUSTOM, url=url)
            token, credentials = await asyncio.to_thread(self._secrets, profile, target)
            fetch = profile.fetch_ice_servers and target.fetch_ice_servers
        else:
            url = await self._local_url()
            token, credentials, fetch = self.gateway.token, {}, False
            profile = profile or next(p for p in config.builtin_profiles() if p.is_local)
            self.log("info", "call", f"Local demo gateway at {url}")
        profile = dataclasses.replace(profile, fetch_ice_servers=fetch,
                                      ca_file=target.ca_file or profile.ca_file)
        self.redact.add(token)
        for credential in credentials.values():
            self.redact.add(credential)
        request = request_from_profile(profile, url, token, variant_id=chosen, mode=target.mode,
                                       turn_credential=credentials.get, timeouts=target.timeouts)
        if target.agent_version_override is not None:
            request = dataclasses.replace(request, agent_version_override=target.agent_version_override)
        return request

    async def _local_url(self) -> str:
        try:
            return await self.gateway.url()
        except OSError as exc:
            raise PrepError(AppError(ErrorKind.NETWORK, "The local demo gateway could not start.",
                                     "Close other copies of Polyphone and try again.",
                                     detail=str(exc)[:200])) from None

    def _secrets(self, profile: config.Profile, target: Target) -> tuple[str, dict[str, str | None]]:
        """The token and TURN credentials (blocking: runs in a worker thread)."""
        if target.profile is None:   # a URL alone: only POLYPHONE_TOKEN can go with it
            found = self.vault.from_environment()
            if found is None:
                raise PrepError(AppError(ErrorKind.CONFIG, "No token: set POLYPHONE_TOKEN, or call a "
                                         "profile with a stored token.", "", hint=EDIT_TOKEN))
            return found, {}
        return call_setup.secrets_for(self.vault, profile, self.log,
                                      prefer_environment=target.prefer_environment)
