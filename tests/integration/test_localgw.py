"""The local gateway over real sockets: validation, media, sessions, faults, CLI.

Real websockets server, real aiortc peers on 127.0.0.1 with `iceServers=[]`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from helpers.gateway_caller import recv_message, wait_until
from polyphone import protocol
from polyphone.audio.analysis import level_dbfs
from polyphone.audio.files import SAMPLE_RATE, tone
from polyphone.cli.gateway import _is_loopback, read_tokens
from polyphone.localgw import Faults
from polyphone.protocol import Answer, Close, ErrorCode, IceCandidate

pytestmark = pytest.mark.integration

TOKEN = "token"


def ws_connect(url: str):
    return connect(url, proxy=None, open_timeout=5, close_timeout=2)


async def send_json(ws, obj) -> None:
    await ws.send(obj if isinstance(obj, str) else json.dumps(obj))


async def expect_error(ws, code: ErrorCode, message: str | None = None) -> protocol.Error:
    reply = await recv_message(ws)
    assert isinstance(reply, protocol.Error), reply
    assert reply.code == code.value, (reply.code, reply.message)
    if message is not None:
        assert reply.message == message
    return reply


async def answer_and_candidates(ws, timeout: float = 1.0) -> tuple[Answer, list[IceCandidate]]:
    """The answer, then the ice-candidate frames that follow it."""
    answer = await recv_message(ws)
    assert isinstance(answer, Answer), answer
    candidates = []
    while True:
        try:
            msg = await recv_message(ws, timeout)
        except asyncio.TimeoutError:
            break
        assert isinstance(msg, IceCandidate), msg
        candidates.append(msg)
    return answer, candidates


def offer_frame(**fields) -> dict:
    """A raw offer dict; a field given as `...` is left out."""
    frame = {"type": "offer", "sessionId": "", "data": {"type": "offer", "sdp": "v=0\r\n"},
             "authToken": TOKEN}
    frame.update(fields)
    return {k: v for k, v in frame.items() if v is not ...}


def spectrum_peak_hz(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    mag = np.abs(np.fft.rfft(x))
    return float(np.argmax(mag) * SAMPLE_RATE / len(samples))


async def http_get(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """A minimal HTTP/1.1 GET (no proxies, no extra dependency)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


# --- validation -------------------------------------------------------------------

VALIDATION_CASES = [
    ("no token", offer_frame(authToken=...), ErrorCode.UNAUTHORIZED, "Auth token required"),
    ("empty token", offer_frame(authToken=""), ErrorCode.UNAUTHORIZED, "Auth token required"),
    ("null token", offer_frame(authToken=None), ErrorCode.UNAUTHORIZED, "Auth token required"),
    ("wrong token", offer_frame(authToken="nope"), ErrorCode.UNAUTHORIZED,
     "Invalid authentication token"),
    ("unknown mode", offer_frame(mode="karaoke"), ErrorCode.INVALID_ARGUMENT, None),
    ("callSid not a string", offer_frame(callSid=5), ErrorCode.INVALID_ARGUMENT, None),
    ("token not a string", offer_frame(authToken=123), ErrorCode.INVALID_ARGUMENT, None),
    ("sdp not a string", offer_frame(data={"type": "offer", "sdp": 7}), ErrorCode.INVALID_ARGUMENT, None),
    ("bad JSON", "{this is not json", ErrorCode.INVALID_MESSAGE, None),
    ("not an object", "[1, 2]", ErrorCode.INVALID_MESSAGE, None),
    ("unknown type", {"type": "dance", "sessionId": ""}, ErrorCode.INVALID_MESSAGE, None),
    ("no type", {"sessionId": "", "data": {}}, ErrorCode.INVALID_MESSAGE, None),
    ("offer without data", offer_frame(data=...), ErrorCode.INVALID_MESSAGE, None),
    ("offer without sdp", offer_frame(data={"type": "offer"}), ErrorCode.INVALID_MESSAGE, None),
    ("candidate without data", {"type": "ice-candidate", "sessionId": "x"},
     ErrorCode.INVALID_MESSAGE, None),
    ("close without sessionId", {"type": "close"}, ErrorCode.INVALID_MESSAGE, None),
    ("client answer", {"type": "answer", "sessionId": "s", "data": {"type": "answer", "sdp": "v=0"}},
     ErrorCode.INVALID_MESSAGE, None),
    ("client error", {"type": "error", "sessionId": "", "data": {"code": "X", "message": ""}},
     ErrorCode.INVALID_MESSAGE, None),
    ("client pong", {"type": "pong", "sessionId": ""}, ErrorCode.INVALID_MESSAGE, None),
    ("unparsable SDP", offer_frame(data={"type": "offer", "sdp": "hello"}),
     ErrorCode.MEDIA_BRIDGE_FAILURE, None),
    ("SDP without media", offer_frame(), ErrorCode.MEDIA_BRIDGE_FAILURE, None),
    ("candidate for unknown session",
     {"type": "ice-candidate", "sessionId": "no-such-session",
      "data": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0",
               "sdpMLineIndex": 0}},
     ErrorCode.HANDLER_ERROR, None),
    ("close for unknown session", {"type": "close", "sessionId": "no-such-session"},
     ErrorCode.HANDLER_ERROR, None),
]


@pytest.mark.parametrize("frame, code, message",
                         [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
async def test_validation_errors(gateway_factory, frame, code, message):
    gateway = await gateway_factory(tokens=[TOKEN])
    async with ws_connect(gateway.url) as ws:
        await send_json(ws, frame)
        reply = await expect_error(ws, code, message)
        if isinstance(frame, dict) and isinstance(frame.get("sessionId"), str):
            assert reply.session_id == frame["sessionId"]
        await ws.ping()  # the socket is still open


async def test_validation_errors_on_one_socket(gateway_factory):
    """Every rule answers with its code and sessionId, one reply per frame; the socket survives."""
    gateway = await gateway_factory(tokens=[TOKEN])
    async with ws_connect(gateway.url) as ws:
        for name, frame, code, message in VALIDATION_CASES:
            await send_json(ws, frame)
            reply = await expect_error(ws, code, message)
            if isinstance(frame, dict) and isinstance(frame.get("sessionId"), str):
                assert reply.session_id == frame["sessionId"], name
        await ws.ping()
    assert gateway.sessions == {}
    assert gateway.errors_sent == len(VALIDATION_CASES)


async def test_sdp_without_opus_or_audio(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN])
    pcmu = await offerers(codecs=["audio/PCMU"])
    assert "opus" not in pcmu.sdp.lower()
    async with ws_connect(gateway.url) as ws:
        await ws.send(pcmu.offer(TOKEN))
        await expect_error(ws, ErrorCode.MEDIA_BRIDGE_FAILURE)
        video_only = pcmu.sdp.replace("m=audio", "m=video")
        await ws.send(protocol.encode(protocol.Offer(sdp=video_only, auth_token=TOKEN)))
        await expect_error(ws, ErrorCode.MEDIA_BRIDGE_FAILURE)
    assert gateway.sessions == {}


async def test_open_mode_accepts_any_token_but_not_none(gateway_factory):
    gateway = await gateway_factory()  # no tokens: open mode
    async with ws_connect(gateway.url) as ws:
        await send_json(ws, offer_frame(authToken="anything"))
        await expect_error(ws, ErrorCode.MEDIA_BRIDGE_FAILURE)  # past auth, stopped at the SDP
        await send_json(ws, offer_frame(authToken=""))
        await expect_error(ws, ErrorCode.UNAUTHORIZED, "Auth token required")


async def test_other_paths_are_rejected_with_404(gateway_factory):
    gateway = await gateway_factory()
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(gateway.url.replace("/signal", "/other")):
            pass
    assert info.value.response.status_code == 404


# --- a real call -------------------------------------------------------------------


def chirp(seconds: float, f0: float = 300.0, f1: float = 3000.0, dbfs: float = -12.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (32767 * 10 ** (dbfs / 20) * np.sin(phase)).astype(np.int16)


def best_correlation(received: np.ndarray, reference: np.ndarray) -> float:
    """Peak normalised cross-correlation of `reference` within `received`."""
    r = received.astype(np.float64)
    c = reference.astype(np.float64)
    n = len(r) + len(c)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(c, size)), size)[:len(r) - len(c) + 1]
    lag = int(np.argmax(xc))
    segment = r[lag:lag + len(c)]
    return float(xc[lag] / (np.linalg.norm(segment) * np.linalg.norm(c) + 1e-9))


async def test_echo_call_connects_and_returns_the_audio(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN])
    sweep = chirp(1.0)
    caller = await offerers(np.concatenate([np.zeros(SAMPLE_RATE * 3 // 10, np.int16), sweep,
                                            np.zeros(SAMPLE_RATE, np.int16)]))
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN, mode="echo", call_sid="call-1"))
        answer, candidates = await answer_and_candidates(ws, timeout=0.5)
        assert candidates, "the gateway sends its candidates as ice-candidate frames"
        for cand in candidates:
            assert cand.session_id == answer.session_id
            assert cand.candidate.candidate.startswith("candidate:")
            assert cand.candidate.sdp_mid == "0" and cand.candidate.sdp_mline_index == 0
        session = gateway.sessions[answer.session_id]
        assert session.agent_kind == "echo" and session.state == "active"
        await caller.accept(answer)
        await caller.wait_connected(5)
        await wait_until(lambda: len(caller.sink.samples) >= SAMPLE_RATE * 1.8, 8,
                         "1.8 s of echoed audio")
    received = caller.sink.samples
    assert best_correlation(received, sweep) >= 0.9
    assert 250 < spectrum_peak_hz(received) < 3100  # the energy is in the sweep's band


async def test_demo_agent_greets_takes_a_turn_and_yields_to_barge_in(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], think_ms=100)
    beep = tone(1000.0, 0.5, -12.0)
    caller = await offerers(np.concatenate([np.zeros(SAMPLE_RATE, np.int16), beep,
                                            np.zeros(SAMPLE_RATE * 2, np.int16)]))
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN))  # no mode: end-to-end, the demo agent
        answer, _ = await answer_and_candidates(ws, timeout=0.2)
        agent = gateway.sessions[answer.session_id].agent
        assert gateway.sessions[answer.session_id].agent_kind == "demo"
        await caller.accept(answer)
        await caller.wait_connected(5)
        # The caller speaks 1 s in, over the greeting (a barge-in); its beep comes back.
        await wait_until(lambda: agent.barge_ins == 1, 4, "a barge-in")
        await wait_until(lambda: agent.turns == 1, 3, "the agent's reply")
        reply_from = len(caller.sink.samples)
        await wait_until(lambda: len(caller.sink.samples) >= reply_from + SAMPLE_RATE * 0.8, 3,
                         "the reply's audio")
    received = caller.sink.samples
    greeting_part = received[:SAMPLE_RATE * 9 // 10]
    assert level_dbfs(greeting_part) > -40, "the greeting plays before the caller speaks"
    reply = received[reply_from:]
    assert level_dbfs(reply) > -35
    assert abs(spectrum_peak_hz(reply) - 1000.0) < 30, "the agent says the caller's beep back"


# --- sessions: close, re-attach, candidates -------------------------------------------


async def test_client_close_ends_the_session(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo")
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN))
        answer, _ = await answer_and_candidates(ws, timeout=0.2)
        session = gateway.sessions[answer.session_id]
        await caller.accept(answer)
        await caller.wait_connected(5)
        await ws.send(protocol.encode(Close(answer.session_id)))
        await wait_until(lambda: answer.session_id not in gateway.sessions, 3, "session ended")
        assert gateway.ended[answer.session_id] == "closed by the client"
        assert session.peer.connectionState == "closed"
        # The id is gone: a second close is an error, and the socket still works.
        await ws.send(protocol.encode(Close(answer.session_id)))
        await expect_error(ws, ErrorCode.HANDLER_ERROR)


async def test_close_after_sends_close_then_ends(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], faults=Faults(close_after=0.3))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN, mode="echo"))
        answer = await recv_message(ws)
        assert isinstance(answer, Answer)
        started = time.monotonic()
        while True:
            msg = await recv_message(ws, 3)
            if isinstance(msg, Close):
                break
            assert isinstance(msg, IceCandidate)
        assert msg.session_id == answer.session_id
        assert time.monotonic() - started >= 0.25
        await wait_until(lambda: answer.session_id not in gateway.sessions, 3, "session ended")
        assert gateway.ended[answer.session_id] == "closed by the agent"


async def test_remote_candidates(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo")
    caller = await offerers()
    own = [ln[2:] for ln in caller.sdp.splitlines() if ln.startswith("a=candidate:")]
    assert own
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN))
        answer, _ = await answer_and_candidates(ws, timeout=0.2)
        session = gateway.sessions[answer.session_id]
        sid = answer.session_id

        def cand(text, mid="0", index=0):
            return protocol.encode(IceCandidate(sid, protocol.Candidate(text, mid, index)))

        for text in own:  # already in the offer: ignored
            await ws.send(cand(text))
        await ws.send(cand(""))  # end-of-candidates: ignored
        await ws.send(cand("candidate:99 1 udp 2130706431 127.0.0.1 9 typ host"))
        await ws.send(cand("candidate:not a candidate"))
        await expect_error(ws, ErrorCode.INVALID_ARGUMENT)
        await ws.send(cand("candidate:98 1 udp 2130706431 127.0.0.1 10 typ host", None, None))
        await wait_until(lambda: session.candidates_added == 2, 2, "two candidates added")
        assert session.candidates_ignored == len(own) + 1
        assert not session.closed
        await caller.accept(answer)
        await caller.wait_connected(5)


async def test_dropped_socket_session_reattaches_from_a_new_socket(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo",
                                    faults=Faults(drop_socket_after=0.4, close_after=1.5))
    caller = await offerers(loop=True)
    own = [ln[2:] for ln in caller.sdp.splitlines() if ln.startswith("a=candidate:")]
    async with ws_connect(gateway.url) as ws1:
        await ws1.send(caller.offer(TOKEN))
        answer = await recv_message(ws1)
        sid = answer.session_id
        await caller.accept(answer)
        await caller.wait_connected(5)
        with pytest.raises(ConnectionClosed):
            for _ in range(50):
                await recv_message(ws1, 3)
    session = gateway.sessions[sid]
    await wait_until(lambda: session.state == "detached", 2, "session detached")
    heard = len(caller.sink.samples)
    await asyncio.sleep(0.2)
    assert len(caller.sink.samples) > heard, "media flows while the signaling is down"
    async with ws_connect(gateway.url) as ws2:
        for text in own:  # what a reconnecting client does: re-send its candidates
            await ws2.send(protocol.encode(IceCandidate(sid, protocol.Candidate(text, "0", 0))))
        await wait_until(lambda: session.state == "active", 2, "session re-attached")
        assert session.reattachments == 1 and session.ws is not None
        msg = await recv_message(ws2, 3)  # close_after's close goes to the new socket
        assert isinstance(msg, Close) and msg.session_id == sid
    assert gateway.ended[sid] == "closed by the agent"


async def test_detached_session_ends_after_the_grace_period(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo", grace_seconds=0.3)
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN))
        answer = await recv_message(ws)
    await wait_until(lambda: answer.session_id in gateway.ended, 3, "session ended by grace")
    assert gateway.ended[answer.session_id] == "signaling lost"


# --- faults ----------------------------------------------------------------------


async def test_candidates_before_answer(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], faults=Faults(candidates_before_answer=True))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN, mode="echo"))
        first = await recv_message(ws)
        assert isinstance(first, IceCandidate)
        frames = [first]
        while not isinstance(frames[-1], Answer):
            frames.append(await recv_message(ws))
        assert {f.session_id for f in frames} == {frames[-1].session_id}
        with pytest.raises(asyncio.TimeoutError):
            await recv_message(ws, 0.3)  # nothing after the answer
        await caller.accept(frames[-1])
        await caller.wait_connected(5)


async def test_answer_delay_never_answer_error_code(gateway_factory, offerers):
    caller = await offerers()
    delayed = await gateway_factory(faults=Faults(answer_delay=0.3))
    async with ws_connect(delayed.url) as ws:
        started = time.monotonic()
        await ws.send(caller.offer(TOKEN))
        assert isinstance(await recv_message(ws), Answer)
        assert time.monotonic() - started >= 0.28
    silent = await gateway_factory(faults=Faults(never_answer=True))
    async with ws_connect(silent.url) as ws:
        await ws.send(caller.offer(TOKEN))
        with pytest.raises(asyncio.TimeoutError):
            await recv_message(ws, 0.5)
        await ws.ping()
    assert silent.sessions == {}
    failing = await gateway_factory(faults=Faults(error_code="AGENT_FAILURE"))
    async with ws_connect(failing.url) as ws:
        await ws.send(caller.offer(TOKEN))
        await expect_error(ws, ErrorCode.AGENT_FAILURE)


async def test_malformed_frames_after_the_answer(gateway_factory, offerers):
    gateway = await gateway_factory(faults=Faults(malformed_frames=True))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN))
        assert isinstance(await recv_message(ws), Answer)
        bad = 0
        for _ in range(20):
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                break
            try:
                assert isinstance(protocol.parse(raw), IceCandidate)
            except protocol.ProtocolError:
                bad += 1
        assert bad >= 3
    # The malformed frames did not end the session: it lives on, waiting for its socket.
    assert len(gateway.sessions) == 1 and gateway.ended == {}, (gateway.sessions, gateway.ended)


# --- ice-servers endpoint ---------------------------------------------------------


async def test_ice_servers_endpoint(gateway_factory):
    servers = [{"urls": ["turn:127.0.0.1:3478"], "username": "u", "credential": "c"}]
    gateway = await gateway_factory(tokens=[TOKEN], ice_servers=servers)
    status, headers, body = await http_get(gateway.http_base, f"{protocol.ICE_SERVERS_PATH}?token={TOKEN}")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"iceServers": servers}
    for query in ("?token=wrong", "", "?token="):
        status, _, body = await http_get(gateway.http_base, protocol.ICE_SERVERS_PATH + query)
        assert status == 401
        assert json.loads(body)["error"]["code"] == "UNAUTHORIZED"
    status, _, _ = await http_get(gateway.http_base, "/nothing-here")
    assert status == 404


# --- garbage never crashes it ----------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(_json_leaf, lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)
_types = st.sampled_from(["offer", "answer", "ice-candidate", "close", "error", "pong", "ping"])
_data_keys = st.sampled_from(["type", "sdp", "candidate", "sdpMid", "sdpMLineIndex", "code", "message"])
_frames = st.fixed_dictionaries({}, optional={
    "type": _types | _json,
    "sessionId": st.sampled_from(["", None]) | _json,
    "data": st.dictionaries(
        _data_keys, _json | st.sampled_from(["v=0\r\n", "candidate:1 1 udp 1 1.2.3.4 5 typ host"]),
        max_size=4) | _json,
    "authToken": st.sampled_from([TOKEN, "", None]) | _json,
    "mode": st.sampled_from(["echo", "end-to-end", "x"]) | _json,
    "callSid": _json,
    "agentVersionOverride": _json,
})
GARBAGE = st.one_of(st.text(max_size=300), st.binary(max_size=300), _json.map(json.dumps),
                    _frames.map(json.dumps))


@pytest.fixture
async def shared_gateway(gateway_factory):
    return await gateway_factory(tokens=[TOKEN])


@settings(max_examples=100, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(GARBAGE, min_size=1, max_size=4))
async def test_garbage_never_crashes_the_gateway(shared_gateway, frames):
    async with ws_connect(shared_gateway.url) as ws:
        for frame in frames:
            await ws.send(frame)
            reply = await recv_message(ws, 3)  # exactly one reply per frame
            assert isinstance(reply, (protocol.Error, Answer)), reply
            if isinstance(reply, protocol.Error):
                assert ErrorCode.lookup(reply.code) is not None


async def test_after_garbage_a_valid_offer_still_gets_an_answer(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN])
    rng = np.random.default_rng(7)
    async with ws_connect(gateway.url) as ws:
        for _ in range(50):
            await ws.send(bytes(rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8)))
            await recv_message(ws)
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        await ws.send(caller.offer(TOKEN, mode="echo"))
        assert isinstance(await recv_message(ws), Answer)


# --- the CLI ---------------------------------------------------------------------

CLI = ("import argparse, sys; from polyphone.cli import gateway as cli; p = argparse.ArgumentParser(); "
       "cli.add_arguments(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))")


async def test_cli_prints_one_line_serves_and_exits_on_sigterm():
    env = dict(os.environ, POLYPHONE_GATEWAY_TOKENS="secret-one, secret-two")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, "--port", "0", "--agent", "echo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.fullmatch(r"listening (ws://127\.0\.0\.1:\d+/api/v1/webrtc/signal)\n", line)
        assert match, line
        async with ws_connect(match.group(1)) as ws:
            await send_json(ws, offer_frame(authToken="wrong"))
            await expect_error(ws, ErrorCode.UNAUTHORIZED, "Invalid authentication token")
            await send_json(ws, offer_frame(authToken="secret-two"))
            await expect_error(ws, ErrorCode.MEDIA_BRIDGE_FAILURE)  # the token was accepted
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out == b"", "only the listening line goes to stdout"
    assert b"secret-" not in err, "tokens are never logged"


def test_cli_tokens_and_loopback(tmp_path, monkeypatch):
    path = tmp_path / "tokens"
    path.write_text("# comment\none\n\n  two  \n")
    assert read_tokens(path) == ["one", "two"]
    monkeypatch.setenv("POLYPHONE_GATEWAY_TOKENS", "a, b,,")
    assert read_tokens(None) == ["a", "b"]
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.2")
