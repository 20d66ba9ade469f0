"""A gateway that ends calls its own way, end to end: the real local gateway plays each case
(its fault switches), Polyphone meets it as the engine in this process or as `polyphone call`.

| the gateway does                                   | what the user gets                             |
|----------------------------------------------------|------------------------------------------------|
| closes the socket 1000 and the peer at once        | ENDED "The agent ended the call.", exit 0      |
| closes the socket 1008 (a terminal code)           | FAILED at once, code and reason shown, exit 3  |
| `{"type":"close"}` with no sessionId               | ENDED, exit 0                                  |
| `error` with no code / no data, for the offer      | FAILED at once, its words shown, UNKNOWN, exit 3 |
| 20 s without RTP, RTCP and consent still flowing   | "the agent is silent", the call lives on       |
| malformed, duplicate and empty trickled candidates | logged and skipped; the call works             |
| sessions bound to their socket (no resume)         | one reconnect, HANDLER_ERROR, a clear end      |
"""

from __future__ import annotations

import asyncio
import json
import time
import wave
from pathlib import Path

import pytest

from helpers.cli import run_polyphone
from helpers.waits import until
from polyphone import protocol
from polyphone.audio.files import MemorySink, SilenceSource, WavSink
from polyphone.engine.call import Call
from polyphone.engine.events import (
    AGENT_HUNG_UP,
    AgentSilence,
    CallError,
    ErrorKind,
    LogLine,
    MediaStalled,
)
from polyphone.engine.request import CallRequest
from polyphone.engine.signaling import SignalingClient, SignalingOptions
from polyphone.localgw.faults import ERROR_SHAPE_MESSAGE, Faults
from polyphone.services import errors as banner

pytestmark = pytest.mark.integration
TOKEN = "fidelity-token-5a17c3"


async def engine_call(url: str, seconds: float, sink=None, mode: str = "echo"):
    events: list = []
    request = CallRequest(url=url, token=TOKEN, mode=mode, fetch_ice_servers=False)
    call = Call(request, SilenceSource(), sink or MemorySink(), events.append,
                signaling_factory=lambda u: SignalingClient(u, SignalingOptions(reconnect_delays=(0.2, 0.4))))
    task = asyncio.ensure_future(call.run())
    await until(task.done, seconds, 0.05, error=None)  # the call ends, or `seconds` pass
    if not task.done():
        await call.hangup()
    return await asyncio.wait_for(task, 15), events, call


async def cli_call(url: str, tmp: Path, *extra: str) -> tuple[int, dict, str]:
    rc, out, err = await run_polyphone("call", "--url", url, "--mode", "echo", "--json", *extra,
                                       tmp=tmp, token=TOKEN, timeout=60)
    return rc, json.loads(out), err


def logs(events) -> str:
    return "\n".join(f"{e.level}: {e.text}" for e in events if isinstance(e, LogLine))


async def test_the_agent_hanging_up_by_closing_the_socket_ends_the_call_cleanly(gateway_factory, tmp_path):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(hangup_after=2.0, hangup_code=1000))
    t0 = time.monotonic()
    rc, report, err = await cli_call(gw.url, tmp_path, "--duration", "20")
    assert rc == 0, err
    assert report["result"] == "ended" and report["error"] is None and report["reason"] == AGENT_HUNG_UP
    assert report["reconnects"] == 0 and "ICE" not in err
    assert time.monotonic() - t0 < 12  # it ended when the agent hung up, not at --duration


async def test_a_terminal_close_code_fails_at_once_with_the_code_and_reason(gateway_factory, tmp_path):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(hangup_after=1.5, hangup_code=1008,
                                                            hangup_reason="too many calls"))
    rc, report, err = await cli_call(gw.url, tmp_path, "--duration", "20")
    assert rc == 3, err
    error = report["error"]
    assert error["kind"] == "closed" and error["code"] == "closed" and error["close_code"] == 1008
    assert "code 1008 policy violation: “too many calls”" in error["message"]
    assert report["reconnects"] == 0 and "check the profile's token" in error["action"]
    shown = banner.explain(protocol_error(report))
    assert shown.title == "The gateway ended the call" and shown.action_label == "Call again"


def protocol_error(report: dict) -> CallError:
    e = report["error"]
    return CallError(ErrorKind(e["kind"]), e["message"], e["action"], None, e["detail"],
                     close_code=e["close_code"])


async def test_close_without_a_session_id_is_the_agent_hanging_up(gateway_factory, tmp_path):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(close_after=1.5, close_without_session=True))
    rc, report, err = await cli_call(gw.url, tmp_path, "--duration", "20")
    assert rc == 0, err
    assert report["result"] == "ended" and report["reason"] == AGENT_HUNG_UP


@pytest.mark.parametrize("shape", ["no-code", "no-data", "bare-message"])
async def test_an_error_without_a_code_fails_at_once_with_the_gateways_words(
        gateway_factory, tmp_path, shape):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(error_shape=shape))
    t0 = time.monotonic()
    rc, report, err = await cli_call(gw.url, tmp_path, "--duration", "20")
    assert rc == 3, err
    assert time.monotonic() - t0 < 10  # not the 15 s answer timeout
    error = report["error"]
    assert error["code"] == protocol.UNKNOWN_CODE and error["kind"] == "gateway"
    assert error["gateway_code"] is None
    if shape == "no-data":
        assert error["message"] == "The gateway reported an error without a code."
    else:
        assert f"“{ERROR_SHAPE_MESSAGE}”" in error["message"] and error["detail"] == ERROR_SHAPE_MESSAGE
    assert f"UNKNOWN: {error['message']}" in err
    shown = banner.explain(CallError(ErrorKind.GATEWAY, error["message"], error["action"], ""))
    assert shown.title == "The gateway reported an error" and shown.what == error["message"]


async def test_twenty_seconds_without_rtp_is_a_silent_agent_and_the_audio_comes_straight_back(
        gateway_factory, tmp_path):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(pause_rtp=(2.0, 20.0)))
    sink = WavSink(tmp_path / "agent.wav")
    arrivals: list[float] = []
    original = sink.on_frame
    sink.on_frame = lambda frame: (arrivals.append(time.monotonic()), original(frame))
    result, events, _call = await engine_call(gw.url, 25.5, sink=sink)
    assert result.ok, result.error
    assert not [e for e in events if isinstance(e, MediaStalled)], logs(events)
    silence = [e for e in events if isinstance(e, AgentSilence)]
    assert [e.active for e in silence] == [True, False], logs(events)
    assert 19.0 <= silence[1].seconds <= 21.5
    # The first frame after the pause arrived at once, and the recording kept the timeline.
    gaps = [(b - a, b) for a, b in zip(arrivals, arrivals[1:])]
    pause, _back_at = max(gaps)
    assert 19.0 <= pause <= 21.5
    with wave.open(str(tmp_path / "agent.wav")) as wav:
        recorded = wav.getnframes() / wav.getframerate()
    assert abs(recorded - (arrivals[-1] - arrivals[0])) < 0.5, (recorded, arrivals[-1] - arrivals[0])
    assert sink.filled_samples / 48_000 >= 19.0


async def test_bad_trickled_candidates_are_logged_and_skipped(gateway_factory):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(bad_candidates=True))
    result, events, _call = await engine_call(gw.url, 3.0)
    assert result.ok, result.error
    text = logs(events)
    assert text.count("skipped an unusable remote candidate") >= 3, text
    assert "skipped a duplicate remote candidate" in text and "end of the gateway's candidates" in text


async def test_a_gateway_that_binds_sessions_to_sockets_ends_the_call_with_words_not_a_loop(
        gateway_factory, tmp_path):
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(drop_socket_after=1.5, no_resume=True))
    rc, report, err = await cli_call(gw.url, tmp_path, "--duration", "20")
    assert rc == 3, err
    assert report["error"]["code"] == "HANDLER_ERROR" and report["reconnects"] == 1
    assert report["error"]["message"] == protocol.ErrorCode.HANDLER_ERROR.explanation


async def test_after_we_sent_close_the_socket_closing_is_the_end_never_a_reconnect() -> None:
    """A gateway that drops the socket (no close frame) when it gets `close`: no reconnect."""
    from websockets.asyncio.server import serve

    connections = 0

    async def handler(ws) -> None:
        nonlocal connections
        connections += 1
        async for raw in ws:
            if '"type":"close"' in raw:
                ws.transport.abort()

    async with serve(handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}{protocol.SIGNAL_PATH}"
        client = SignalingClient(url, SignalingOptions(reconnect_delays=(0.1, 0.1)))
        lost, closed = [], []
        client.on_lost, client.on_closed = lost.append, closed.append
        await client.connect()
        client.resumable = True  # as after an answer
        await client.send(protocol.Close("sess-1"))
        await asyncio.sleep(0.6)  # past every reconnect delay
        await client.close()
    assert connections == 1 and client.reconnects == 0 and not lost and not closed
