"""A call through the real audio pipeline (real or virtual devices) to a gateway, connected."""

from __future__ import annotations

import asyncio

from helpers.waits import until
from polyphone.audio.pipeline import AudioPipeline
from polyphone.engine.call import Call
from polyphone.engine.events import CallState
from polyphone.engine.request import CallRequest


async def start_call(gw, pipeline: AudioPipeline, mode: str, events: list, token: str
                     ) -> tuple[Call, asyncio.Task]:
    """The engine's `Call` on the pipeline's microphone and speaker, once CONNECTED (asserted)."""
    call = Call(CallRequest(url=gw.url, token=token, mode=mode, fetch_ice_servers=False),
                pipeline.source, pipeline.sink, events.append)
    task = asyncio.ensure_future(call.run())
    await until(lambda: call.state is CallState.CONNECTED or task.done(), 5, 0.05, error=None)
    assert call.state is CallState.CONNECTED, call.result.error
    return call, task
