"""Fixtures for integration tests: a real local gateway and real aiortc callers, on loopback.

Nothing here contacts another machine: the gateway and every peer use `iceServers=[]`.
The caller helpers live in `helpers.gateway_caller` (importable from any test).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helpers.gateway_caller import Offerer, make_offerer
from polyphone.localgw import LocalGateway


@pytest.fixture
async def gateway_factory():
    """`await gateway_factory(**LocalGateway kwargs)`: started on 127.0.0.1:0, stopped after."""
    started: list[LocalGateway] = []

    async def make(**kwargs: Any) -> LocalGateway:
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        gateway = LocalGateway(**kwargs)
        await gateway.start()
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        await asyncio.wait_for(gateway.stop(), 15)


@pytest.fixture
async def offerers():
    """`await offerers(samples=None, *, loop=False, codecs=None)`: a real aiortc caller
    with its offer made (see `make_offerer`); every one is closed after the test."""
    made: list[Offerer] = []

    async def make(*args: Any, **kwargs: Any) -> Offerer:
        offerer = await make_offerer(*args, **kwargs)
        made.append(offerer)
        return offerer

    yield make
    for offerer in made:
        await asyncio.wait_for(offerer.close(), 10)
