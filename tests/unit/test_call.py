"""The call state machine on in-memory ports: no sockets, no aiortc peers."""

from __future__ import annotations

import asyncio

import pytest

from helpers.fake_call import SID, Harness
from polyphone import protocol
from polyphone.engine.call import TRANSITIONS
from polyphone.engine.events import (
    CallError,
    CallState,
    ErrorKind,
    LogLine,
    MediaStalled,
    SessionStarted,
    StateChanged,
)
from polyphone.engine.request import Timeouts
from polyphone.engine.signaling import SignalingError


def test_transition_table_is_closed_and_final_states_are_sinks() -> None:
    assert set(TRANSITIONS) == set(CallState)
    assert TRANSITIONS[CallState.ENDED] == frozenset() == TRANSITIONS[CallState.FAILED]
    for state, targets in TRANSITIONS.items():
        if not state.is_final and state is not CallState.ENDING:
            assert CallState.ENDING in targets, state


async def test_happy_path_hangup_sends_close_once() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    assert h.call.state is CallState.CONNECTED
    assert any(isinstance(e, SessionStarted) and e.session_id == SID for e in h.events)
    result = await h.call.hangup()
    await h.call.hangup()  # idempotent
    assert (await task) is result
    assert result.ok and result.session_id == SID
    assert h.states() == [CallState.CONNECTING, CallState.NEGOTIATING, CallState.CONNECTED,
                          CallState.ENDING, CallState.ENDED]
    assert h.signaling.sent_types().count("close") == 1
    assert h.signaling.closed and h.peer.closed
    # local candidates were trickled after the answer, with the session id
    cands = [m for m in h.signaling.sent if isinstance(m, protocol.IceCandidate)]
    assert cands and all(c.session_id == SID for c in cands)


async def test_offer_carries_the_request_fields_and_a_fresh_call_sid() -> None:
    h = Harness()
    task = await h.start()
    offer = h.signaling.sent[0]
    assert isinstance(offer, protocol.Offer)
    assert offer.session_id == "" and offer.auth_token == "secret-token-123"
    assert len(offer.call_sid or "") == 36
    await h.call.hangup()
    await task


async def test_server_close_ends_cleanly_not_as_error() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.deliver(protocol.Close(SID))
    result = await asyncio.wait_for(task, 2)
    assert result.state is CallState.ENDED and result.error is None
    assert "agent ended" in result.reason


async def test_gateway_error_fails_with_code_and_explanation() -> None:
    h = Harness()
    task = await h.start()
    h.signaling.deliver(protocol.Error("", "UNAUTHORIZED", "Invalid authentication token"))
    result = await asyncio.wait_for(task, 2)
    assert result.state is CallState.FAILED
    assert result.error.kind is ErrorKind.GATEWAY and result.error.code == "UNAUTHORIZED"
    assert result.error.message == protocol.ErrorCode.UNAUTHORIZED.explanation
    assert "close" not in h.signaling.sent_types()  # no session: nothing to close


async def test_error_after_session_sends_close() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.deliver(protocol.Error(SID, "AGENT_FAILURE", "agent down"))
    result = await asyncio.wait_for(task, 2)
    assert result.error.code == "AGENT_FAILURE"
    assert h.signaling.sent_types()[-1] == "close"


async def test_frames_for_another_session_and_duplicate_answers_are_ignored() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.deliver(protocol.Answer(SID, "v=0 again"))
    h.signaling.deliver(protocol.Answer("other", "v=0 other"))
    h.signaling.deliver(protocol.Close("other"))
    h.signaling.deliver(protocol.Error("other", "HANDLER_ERROR"))
    await asyncio.sleep(0.05)
    assert h.call.state is CallState.CONNECTED
    assert h.peer.answer_sdp == "v=0 fake answer"
    logs = [e.text for e in h.events if isinstance(e, LogLine)]
    assert any("duplicate answer" in t for t in logs)
    assert any("another session" in t for t in logs)
    await h.call.hangup()
    await task


async def test_candidates_before_the_answer_are_held_then_added() -> None:
    h = Harness()
    task = await h.start()
    early = protocol.Candidate("candidate:9 1 udp 9 127.0.0.1 9 typ host", "0", 0)
    h.signaling.deliver(protocol.IceCandidate(SID, early))
    await asyncio.sleep(0.02)
    assert h.peer.held == [early] and h.peer.remote == []
    await h.answer()
    assert h.peer.remote == [early]
    await h.call.hangup()
    await task


async def test_answer_timeout() -> None:
    h = Harness(Timeouts(answer=0.1))
    task = await h.start()
    result = await asyncio.wait_for(task, 2)
    assert result.state is CallState.FAILED and result.error.kind is ErrorKind.TIMEOUT
    assert "did not answer" in result.error.message


async def test_connect_timeout_when_ice_never_connects() -> None:
    h = Harness(Timeouts(connect=0.2))
    task = await h.start()
    await h.answer()
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.TIMEOUT and "did not connect" in result.error.message
    assert h.signaling.sent_types()[-1] == "close"


async def test_ice_failure_and_disconnect_grace() -> None:
    h = Harness(Timeouts(disconnect_grace=0.15))
    task = await h.start()
    await h.connect()
    h.peer.on_state("peer", "disconnected")
    await asyncio.sleep(0.05)
    h.peer.on_state("peer", "connected")  # came back inside the grace period
    await asyncio.sleep(0.2)
    assert h.call.state is CallState.CONNECTED
    h.peer.on_state("peer", "disconnected")
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.ICE


async def test_connect_failure_is_a_network_error() -> None:
    h = Harness(fail_connect=SignalingError("Could not connect.", "Check your network."))
    result = await asyncio.wait_for(h.call.run(), 2)
    assert result.state is CallState.FAILED and result.error.kind is ErrorKind.NETWORK
    assert h.states()[-2:] == [CallState.ENDING, CallState.FAILED]


async def test_signaling_lost_for_good_fails_the_call() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.on_lost(SignalingError("lost", "reconnect"))
    result = await asyncio.wait_for(task, 2)
    assert result.error.kind is ErrorKind.NETWORK


async def test_media_watchdog_reports_a_stall() -> None:
    h = Harness(Timeouts(media_stall=0.2))
    task = await h.start()
    await h.connect()
    await asyncio.sleep(0.5)
    stalls = [e for e in h.events if isinstance(e, MediaStalled)]
    assert len(stalls) == 1 and stalls[0].seconds >= 0.2
    await h.call.hangup()
    await task


async def test_media_that_never_returns_fails_the_call_with_call_again() -> None:
    h = Harness(Timeouts(media_stall=0.1, media_lost=0.4))
    task = await h.start()
    await h.connect()
    result = await asyncio.wait_for(task, 3)
    assert [type(e) for e in h.events if isinstance(e, MediaStalled)] == [MediaStalled]
    assert result.error is not None and result.error.kind is ErrorKind.TIMEOUT
    assert "did not return within 0.4 s" in result.error.message
    assert "call again" in result.error.action


async def test_the_token_appears_in_no_event() -> None:
    h = Harness()
    task = await h.start()
    await h.connect()
    h.signaling.deliver(protocol.Error(SID, "UNAUTHORIZED", "bad token"))
    await asyncio.wait_for(task, 2)
    assert h.events
    for e in h.events:
        assert "secret-token-123" not in repr(e)
    assert "secret-token-123" not in repr(h.call.request)


async def test_a_failing_listener_does_not_break_the_call() -> None:
    h = Harness()

    def bad(event) -> None:
        if isinstance(event, StateChanged):
            raise RuntimeError("listener bug")

    h.call._listener = bad
    task = await h.start()
    await h.connect()
    result = await h.call.hangup()
    await task
    assert result.ok


@pytest.mark.parametrize("code", [c.value for c in protocol.ErrorCode])
async def test_every_error_code_has_words(code: str) -> None:
    h = Harness()
    task = await h.start()
    h.signaling.deliver(protocol.Error("", code, "x"))
    result = await asyncio.wait_for(task, 2)
    err: CallError = result.error
    assert err.code == code and err.message and err.action
