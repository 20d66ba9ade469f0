"""The embedded local gateway: the "Local demo agent" profile, `polyphone call` without a
URL, and the self-test's loopback call.

Started on first use, inside the caller's own event loop, on 127.0.0.1 with a random token
made for this run: the token is never shown or stored, and no other program can use the
gateway without it. Whoever owns it calls `stop()` (the window at exit, the CLI when done).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Callable


class EmbeddedGateway:
    def __init__(self, factory: Callable[..., Any] | None = None, **options: Any) -> None:
        """`options` go to `localgw.server.LocalGateway` (e.g. agent="echo")."""
        self.token = secrets.token_urlsafe(24)
        self._factory = factory
        self._options = options
        self._gateway: Any = None
        self._lock: asyncio.Lock | None = None

    @property
    def running(self) -> bool:
        return self._gateway is not None

    async def url(self) -> str:
        """The signaling URL, starting the gateway first if needed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._gateway is None:
                factory = self._factory
                if factory is None:
                    from ..localgw.server import LocalGateway as factory
                gateway = factory(host="127.0.0.1", port=0, tokens=[self.token], **self._options)
                await gateway.start()
                self._gateway = gateway
            return self._gateway.url

    async def stop(self) -> None:
        gateway, self._gateway = self._gateway, None
        if gateway is not None:
            await asyncio.wait_for(gateway.stop(), 10)
