"""How Polyphone reaches the network: its User-Agent and its proxy policy.

Both HTTP clients, the signaling websocket (`signaling.py`) and the ice-servers fetch
(`ice.py`), take these from here, so they behave the same; TLS for both comes from
`signaling.make_ssl_context` (the operating system's trust store, through `truststore`).
"""

from __future__ import annotations

import functools
import platform
import re
import urllib.request
from urllib.parse import urlsplit

from .. import __version__

_UNSAFE = re.compile(r"[^A-Za-z0-9._+~ -]")


def _clean(text: str) -> str:
    """Header-safe text (ASCII, no parentheses or semicolons of its own)."""
    return _UNSAFE.sub("-", text).strip() or "unknown"


def _os_name() -> str:
    system = platform.system()
    if system == "Darwin":
        mac = platform.mac_ver()[0]
        return f"macOS {mac}" if mac else f"Darwin {platform.release()}"
    return f"{system or 'unknown'} {platform.release()}".strip()


@functools.lru_cache(maxsize=1)
def user_agent() -> str:
    """`Polyphone/<version> (<OS and release>; Python <x.y.z>; aiortc <version>)`."""
    try:
        import aiortc
        aiortc_version = getattr(aiortc, "__version__", "") or "unknown"
    except ImportError:  # pragma: no cover - aiortc is a hard dependency
        aiortc_version = "unknown"
    return (f"Polyphone/{_clean(__version__)} ({_clean(_os_name())}; "
            f"Python {_clean(platform.python_version())}; aiortc {_clean(aiortc_version)})")


def _is_loopback(host: str) -> bool:
    from ..protocol.urls import is_loopback_host

    return is_loopback_host(host)


def proxy_for(url: str) -> str | None:
    """The proxy to reach `url` (wss://, ws://, https:// or http://) through, or None: direct.

    One policy for the signaling websocket and the ice-servers fetch:
    - A loopback host (localhost, 127.0.0.0/8, ::1: the local gateway) is always reached
      directly, whatever the proxy settings.
    - Any other host goes through the system's HTTPS proxy: the `https_proxy` /
      `HTTPS_PROXY` environment variable (the lower-case one wins); where no proxy variable
      is set, the operating system's own setting as Python's urllib reads it (Windows:
      Internet Options; macOS: Network settings).
    - `no_proxy` / `NO_PROXY` (host names or domain suffixes, comma separated; `*` for all),
      or the OS's bypass list, sends the listed hosts direct.
    - The proxy must be an `http://` proxy (a value without a scheme counts as `http://`):
      the connection is a CONNECT tunnel, so TLS still runs end to end and the gateway's
      certificate is still checked. A proxy with another scheme (`socks5://`, `https://`)
      is not supported and is not used. `HTTP_PROXY`, `ALL_PROXY` and `WSS_PROXY` are not read.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if not host or _is_loopback(host):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc = f"{netloc}:{port}"
    if urllib.request.proxy_bypass(netloc):
        return None
    proxy = (urllib.request.getproxies().get("https") or "").strip()
    if not proxy:
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    return proxy if proxy.lower().startswith("http://") else None
