"""Polyphone's call engine against the real local gateway and real aiortc, on loopback."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from helpers.signal_match import best_correlation
from helpers.waits import until
from polyphone import protocol
from polyphone.audio.files import MemorySink, PacedSource, SilenceSource, read_wav
from polyphone.engine.call import Call
from polyphone.engine.events import CallState, ConnectionChanged, ErrorKind, SelectedPair, StatsSample
from polyphone.engine.request import CallRequest, Timeouts
from polyphone.localgw import Faults
from polyphone.paths import resource

TOKEN = "e2e-token-4f1c"
pytestmark = pytest.mark.integration


def request(url: str, **kw) -> CallRequest:
    kw.setdefault("mode", "echo")
    kw.setdefault("fetch_ice_servers", False)
    return CallRequest(url=url, token=kw.pop("token", TOKEN), **kw)


async def run_call(url: str, seconds: float, source=None, sink=None, **kw):
    events: list = []
    call = Call(request(url, **kw), source or SilenceSource(), sink or MemorySink(), events.append)
    task = asyncio.ensure_future(call.run())
    await until(task.done, seconds, 0.05, error=None)  # the call ends, or `seconds` pass
    if not task.done():
        await call.hangup()
    return await asyncio.wait_for(task, 10), events, call


def chirp(seconds: float, f0: float = 200.0, f1: float = 4000.0) -> np.ndarray:
    t = np.arange(int(48_000 * seconds)) / 48_000
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds))
    return (0.3 * 32767 * np.sin(phase)).astype(np.int16)


async def test_a_tone_sweep_in_echo_mode_comes_back(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    sweep = np.tile(chirp(0.5), 4)
    sink = MemorySink()
    result, events, call = await run_call(gw.url, 3.0, PacedSource(sweep), sink)
    assert result.ok, result.error
    corr, lag = best_correlation(sweep, sink.samples, max_lag_s=0.4)
    assert corr >= 0.9, (corr, lag)
    assert 0 <= lag < 0.4
    # timings, stats, ICE pair and state events were all reported
    t = result.timings_ms
    assert 0 < t["ws_open"] <= t["answer"] <= t["ice_connected"] <= t["first_audio"]
    assert any(isinstance(e, StatsSample) and e.packets_received > 0 for e in events)
    pair = next(e for e in events if isinstance(e, SelectedPair))
    assert pair.local.type == "host" and pair.remote.port > 0
    assert result.stats is not None and result.stats.codec == "opus/48000"
    components = {e.component for e in events if isinstance(e, ConnectionChanged)}
    assert {"signaling", "ice-gathering", "ice-connection", "peer", "dtls"} <= components
    assert not gw.sessions  # our close ended the session on the gateway


async def test_speech_in_echo_mode_is_recognisable(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    speech = read_wav(resource("sounds/greeting.wav"))[: 48_000 * 3]
    sink = MemorySink()
    result, _, _ = await run_call(gw.url, 4.0, PacedSource(speech), sink)
    assert result.ok, result.error
    corr, _ = best_correlation(speech, sink.samples, max_lag_s=0.4)
    assert corr >= 0.85, corr  # two Opus generations at 96 kbit/s measured ~0.89 here


async def test_wrong_token_is_unauthorized(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    result, _, _ = await run_call(gw.url, 5, token="not-the-token")
    assert result.state is CallState.FAILED
    assert result.error.kind is ErrorKind.GATEWAY and result.error.code == "UNAUTHORIZED"


async def test_server_close_ends_the_call_cleanly(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(close_after=0.6))
    result, _, _ = await run_call(gw.url, 5)
    assert result.state is CallState.ENDED and result.error is None and result.connected
    assert "agent ended" in result.reason


async def test_socket_dropped_mid_call_is_resumed(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(drop_socket_after=0.5))
    sink = MemorySink()
    source = PacedSource(np.tile(read_wav(resource("sounds/greeting.wav")), 2))
    result, events, call = await run_call(gw.url, 3.5, source, sink)
    assert result.ok, result.error
    assert result.reconnects == 1
    states = [e.state for e in events if isinstance(e, ConnectionChanged)
              and e.component == "signaling"]
    assert "reconnecting" in states and states.count("open") >= 2
    # the same session went on: audio kept flowing after the drop
    assert len(sink.samples) > 48_000 * 2


async def test_candidates_before_the_answer_are_held(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(candidates_before_answer=True))
    result, _, _ = await run_call(gw.url, 1.0)
    assert result.ok, result.error


async def test_malformed_frames_do_not_break_the_call(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(malformed_frames=True))
    result, events, _ = await run_call(gw.url, 1.5)
    assert result.ok, result.error


async def test_no_answer_times_out(gateway_factory) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(never_answer=True))
    result, _, _ = await run_call(gw.url, 5, timeouts=Timeouts(answer=0.5))
    assert result.error.kind is ErrorKind.TIMEOUT


async def test_nothing_listening_is_a_network_error() -> None:
    result, _, _ = await run_call("ws://127.0.0.1:9/api/v1/webrtc/signal", 5)
    assert result.error.kind is ErrorKind.NETWORK
    assert "Could not connect" in result.error.message


@pytest.mark.parametrize("code", [c.value for c in protocol.ErrorCode])
async def test_every_gateway_error_code(gateway_factory, code: str) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(error_code=code))
    result, _, _ = await run_call(gw.url, 5)
    assert result.error.code == code
    assert result.error.message == protocol.ErrorCode(code).explanation
