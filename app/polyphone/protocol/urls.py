"""Which signaling URLs Polyphone will use: `wss://`, or `ws://` only to this computer, and
never with credentials in the URL. Pure: the profile checks it before saving, the signaling
client before connecting."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..errors import UserFacingError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
WHAT_TO_DO = "Check the profile's region or custom URL."


class UrlError(UserFacingError):
    """A signaling URL that must not be used (what is wrong, what to do)."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The URL, if Polyphone may use it; otherwise UrlError."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise UrlError(f"The gateway URL {url[:80]!r} is not valid.", WHAT_TO_DO) from None
    if parts.scheme not in ("ws", "wss") or not host:
        raise UrlError("The gateway URL must start with wss:// (or ws:// for a gateway on this computer).",
                       WHAT_TO_DO)
    if parts.scheme == "ws" and not is_loopback_host(host):
        raise UrlError(f"Refusing an unencrypted ws:// connection to {host}: tokens would cross the "
                       "network in clear text.", "Use the wss:// address of the gateway.")
    if parts.username or parts.password or "token" in (parts.query or "").lower():
        raise UrlError("The gateway URL must not carry credentials.",
                       "Remove them from the URL; store the token in the profile instead.")
    return url
