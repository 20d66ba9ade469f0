"""How a call ends when a real gateway does it its own way (the spec is silent; PolyAI's SDKs
are the reference): hang-ups by socket close, codeless errors, a silent agent, bad candidates.
The state machine on in-memory ports; the same cases end to end are in
tests/integration/test_gateway_fidelity.py."""

from __future__ import annotations

import asyncio
import time

from helpers.fake_call import SID, Harness
from polyphone import protocol
from polyphone.engine.events import AGENT_HUNG_UP, AgentSilence, CallState, ErrorKind, LogLine, MediaStalled
from polyphone.engine.peer import PeerError
from polyphone.engine.request import Timeouts
from polyphone.engine.signaling import SocketClosed
from polyphone.protocol import CloseKind


def closed(code: int, reason: str = "") -> SocketClosed:
    return SocketClosed(protocol.closes.classify(code), code, reason)


async def test_a_socket_closed_with_1000_after_connecting_is_the_agent_hanging_up() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.on_closed(closed(1000))
    result = await asyncio.wait_for(task, 2)
    assert result.state is CallState.ENDED and result.error is None and result.ok
    assert result.reason == AGENT_HUNG_UP


async def test_the_peer_going_down_with_the_socket_shows_the_hang_up_not_ice() -> None:
    h = Harness(Timeouts(peer_down_settle=0.3))
    task = await h.start()
    await h.connect()
    h.peer.on_state("peer", "closed")        # the gateway tore the peer down first...
    await asyncio.sleep(0.05)
    h.signaling.on_closed(closed(1001))      # ...and closed the socket in the same moment
    result = await asyncio.wait_for(task, 2)
    assert result.state is CallState.ENDED and result.error is None


async def test_a_peer_that_fails_on_its_own_is_still_an_ice_failure_after_the_settle() -> None:
    h = Harness(Timeouts(peer_down_settle=0.1))
    task = await h.start()
    await h.connect()
    t0 = time.monotonic()
    h.peer.on_state("peer", "failed")
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.ICE and time.monotonic() - t0 >= 0.09


async def test_terminal_close_codes_fail_at_once_with_the_code_and_reason() -> None:
    for code, words in ((1008, "policy violation"), (1011, "internal error"), (4403, "own code")):
        h = Harness()
        task = await h.start()
        await h.connect()
        h.signaling.on_closed(closed(code, "nope\x07 go\naway"))
        result = await asyncio.wait_for(task, 2)
        err = result.error
        assert result.state is CallState.FAILED and err.kind is ErrorKind.CLOSED
        assert err.close_code == code and f"code {code}" in err.message and words in err.message
        assert "“nope go away”" in err.message and err.detail == "nope go away"


async def test_a_clean_close_before_the_call_connected_is_a_failure_not_a_hang_up() -> None:
    h = Harness()
    task = await h.start()
    h.signaling.on_closed(closed(1000))
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.CLOSED and "before the call connected" in result.error.message


async def test_close_without_a_session_id_is_ours() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.deliver(protocol.parse('{"type":"close"}'))
    result = await asyncio.wait_for(task, 2)
    assert result.state is CallState.ENDED and result.reason == AGENT_HUNG_UP


async def test_an_error_without_a_code_fails_at_once_with_the_gateways_words() -> None:
    h = Harness()
    task = await h.start()
    t0 = time.monotonic()
    h.signaling.deliver(protocol.parse(
        '{"type":"error","data":{"message":"Agent \\u0000is\\u001b[31m busy"}}'))
    result = await asyncio.wait_for(task, 2)
    err = result.error
    assert time.monotonic() - t0 < 1 and err.kind is ErrorKind.GATEWAY and err.code == ""
    assert "“Agent is[31m busy”" in err.message and "\x00" not in err.message


async def test_an_error_with_no_data_at_all_still_fails_and_says_so() -> None:
    h = Harness()
    task = await h.start()
    h.signaling.deliver(protocol.parse('{"type":"error"}'))
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.GATEWAY and "without a code" in result.error.message


async def test_rtp_silence_with_the_gateway_still_there_is_a_silent_agent_not_a_failure() -> None:
    h = Harness(Timeouts(media_stall=0.2, media_lost=0.5, agent_silent=0.2))
    task = await h.start()
    await h.connect()
    for _ in range(10):  # 1 s: twice the grace, with consent and RTCP still arriving
        h.peer.heard_at = time.monotonic()
        await asyncio.sleep(0.1)
    assert h.call.state is CallState.CONNECTED
    silences = [e for e in h.events if isinstance(e, AgentSilence)]
    assert [e.active for e in silences] == [True] and not any(isinstance(e, MediaStalled) for e in h.events)
    h.peer.heard_at = None
    result = await asyncio.wait_for(task, 3)  # now nothing at all arrives: the grace runs out
    assert result.error.kind is ErrorKind.TIMEOUT


async def test_an_unusable_remote_candidate_is_logged_and_the_call_goes_on() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()

    async def refuse(cand):
        raise PeerError("skipped an unusable remote candidate 'candidate:garbage'")

    h.peer.add_remote_candidate = refuse
    h.signaling.deliver(protocol.IceCandidate(SID, protocol.Candidate("candidate:garbage", "0", 0)))
    await asyncio.sleep(0.05)
    assert h.call.state is CallState.CONNECTED
    assert any(isinstance(e, LogLine) and "unusable remote candidate" in e.text for e in h.events)
    await h.call.hangup()
    await task


def test_close_codes_are_classified_as_the_ios_sdk_does() -> None:
    classify = protocol.closes.classify
    assert classify(1000) is classify(1001) is CloseKind.HANGUP
    terminal = (1002, 1003, 1007, 1008, 1009, 1010, 1011, 4000, 4999)
    assert all(classify(c) is CloseKind.TERMINAL for c in terminal)
    assert all(classify(c) is CloseKind.DROPPED for c in (None, 1005, 1006, 1012, 1013, 1014, 3000, 5000))


async def test_a_peer_down_while_the_socket_reconnects_waits_for_what_the_gateway_says() -> None:
    h = Harness(Timeouts(peer_down_settle=0.1))
    task = await h.start()
    await h.connect()
    h.signaling.on_state("reconnecting")
    h.peer.on_state("peer", "closed")
    await asyncio.sleep(0.35)  # three settles: still waiting for the new socket
    assert h.call.state is CallState.CONNECTED
    h.signaling.on_state("open")
    h.signaling.deliver(protocol.Error(SID, "HANDLER_ERROR", "Unknown or expired session"))
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.GATEWAY and result.error.code == "HANDLER_ERROR"


async def test_after_the_socket_resumes_the_gateway_gets_a_whole_settle_to_say_why() -> None:
    h = Harness(Timeouts(peer_down_settle=0.3))
    task = await h.start()
    await h.connect()
    h.signaling.on_state("reconnecting")
    h.peer.on_state("peer", "closed")
    await asyncio.sleep(0.25)
    h.signaling.on_state("open")  # resumed just before the first settle would end
    await asyncio.sleep(0.15)
    assert h.call.state is CallState.CONNECTED
    h.signaling.deliver(protocol.Error(SID, "HANDLER_ERROR", "Unknown or expired session"))
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.GATEWAY and result.error.code == "HANDLER_ERROR"
