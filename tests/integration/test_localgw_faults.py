"""The local gateway's real-server behaviours (Faults), asserted on the wire.

A real `LocalGateway` on 127.0.0.1, a real websockets client and a real aiortc
caller (`iceServers=[]`: nothing leaves the machine). Each test looks at what a
client sees: raw frames, the websocket close code and reason, RTP and RTCP as
the caller's DTLS transport hands them up, the peer connection's state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from helpers.gateway_caller import recv_message, wait_until
from polyphone import protocol
from polyphone.cli import gateway as gateway_cli
from polyphone.localgw import Faults
from polyphone.localgw.faults import bad_candidate_frames
from polyphone.protocol import Answer, Candidate, ErrorCode, IceCandidate

pytestmark = pytest.mark.integration

TOKEN = "token"
NEW_FLAGS = ["--hangup-after", "--hangup-code", "--hangup-reason", "--close-without-session",
             "--error-shape", "--pause-rtp", "--bad-candidates", "--no-resume"]


def ws_connect(url: str):
    return connect(url, proxy=None, open_timeout=5, close_timeout=2)


async def recv_raw(ws, timeout: float = 5.0) -> str:
    return await asyncio.wait_for(ws.recv(), timeout)


async def raw_frames_until_quiet(ws, quiet: float = 0.5, limit: int = 50) -> list[str]:
    """Every frame until none comes for `quiet` s."""
    frames: list[str] = []
    for _ in range(limit):
        try:
            frames.append(await recv_raw(ws, quiet))
        except asyncio.TimeoutError:
            break
    return frames


async def offer_and_answer(ws, caller, **fields) -> Answer:
    await ws.send(caller.offer(TOKEN, **fields))
    answer = await recv_message(ws)
    assert isinstance(answer, Answer), answer
    return answer


async def expect_unknown_session(ws, session_id: str) -> None:
    reply = await recv_message(ws, 3)
    assert isinstance(reply, protocol.Error), reply
    assert reply.code == ErrorCode.HANDLER_ERROR.value, reply
    assert reply.message == "Unknown or expired session"
    assert reply.session_id == session_id


# --- 1. hang up by socket close ----------------------------------------------------


@pytest.mark.parametrize("code, reason", [(1000, ""), (1011, "agent hung up"), (4321, "bye now")])
async def test_hangup_closes_socket_and_peer_with_the_code(gateway_factory, offerers, code, reason):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo",
                                    faults=Faults(hangup_after=0.8, hangup_code=code, hangup_reason=reason))
    caller = await offerers(loop=True)
    frames: list[str] = []
    async with ws_connect(gateway.url) as ws:
        answer = await offer_and_answer(ws, caller, mode="echo")
        answered_at = time.monotonic()
        await caller.accept(answer)
        await caller.wait_connected(5)
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(100):
                frames.append(await recv_raw(ws, 5))
        closed_at = time.monotonic()
    assert info.value.rcvd is not None, "the server sent a close frame"
    assert info.value.rcvd.code == code and info.value.rcvd.reason == reason
    assert ws.close_code == code and ws.close_reason == reason
    assert closed_at - answered_at >= 0.75
    # no `close` message before the socket went: only the gateway's candidates
    assert all(json.loads(f)["type"] == "ice-candidate" for f in frames), frames
    # the peer was torn down at the same moment: the caller's peer connection ends
    await wait_until(lambda: caller.pc.connectionState in ("closed", "failed"), 3,
                     f"caller peer closed (state {caller.pc.connectionState})")
    assert time.monotonic() - closed_at < 2.5
    assert gateway.ended[answer.session_id] == "hung up by the agent"
    assert answer.session_id not in gateway.sessions


def test_hangup_codes_are_checked():
    for ok in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999):
        assert Faults(hangup_after=1, hangup_code=ok).hangup_code == ok
    for bad in (999, 1004, 1005, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            Faults(hangup_after=1, hangup_code=bad)
    with pytest.raises(ValueError):
        Faults(hangup_after=1, hangup_reason="x" * 124)


# --- 2. close without sessionId -----------------------------------------------------


async def test_close_without_session_sends_bare_close(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo",
                                    faults=Faults(close_after=0.3, close_without_session=True))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        answer = await offer_and_answer(ws, caller)
        for _ in range(50):
            raw = await recv_raw(ws, 3)
            if json.loads(raw)["type"] == "close":
                break
        assert raw == '{"type":"close"}'
        assert "sessionId" not in json.loads(raw)
        await wait_until(lambda: answer.session_id in gateway.ended, 3, "session ended")
        assert gateway.ended[answer.session_id] == "closed by the agent"
        await ws.ping()  # the socket stays open


# --- 3. error frames without a code -----------------------------------------------------

ERROR_SHAPES = {
    "no-code": {"type": "error", "sessionId": "", "data": {"message": "Agent is not available right now"}},
    "no-data": {"type": "error", "sessionId": ""},
    "bare-message": {"type": "error", "message": "Agent is not available right now"},
}


@pytest.mark.parametrize("shape", list(ERROR_SHAPES))
async def test_error_shape_answers_every_valid_offer(gateway_factory, offerers, shape):
    gateway = await gateway_factory(tokens=[TOKEN], faults=Faults(error_shape=shape))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        for _ in range(2):  # every offer, not just the first
            await ws.send(caller.offer(TOKEN, mode="echo"))
            raw = await recv_raw(ws)
            assert json.loads(raw) == ERROR_SHAPES[shape]
            assert "code" not in raw
        await ws.send(caller.offer("wrong-token"))  # an invalid offer: the usual error
        reply = await recv_message(ws)
        assert isinstance(reply, protocol.Error) and reply.code == ErrorCode.UNAUTHORIZED.value
        with pytest.raises(asyncio.TimeoutError):
            await recv_raw(ws, 0.3)  # one frame per offer
        await ws.ping()
    assert gateway.sessions == {}
    assert gateway.errors_sent == 3


# --- 4. RTP paused, RTCP flowing ------------------------------------------------------------


@dataclass
class WireLog:
    """What the caller's DTLS transport hands up, after SRTP: RTP and RTCP, with arrival times."""

    rtp: list[tuple[float, int, int, int]] = field(default_factory=list)  # (t, ssrc, seq, ts)
    rtcp: list[tuple[float, bytes]] = field(default_factory=list)

    def install(self, dtls) -> None:
        handle_rtp, handle_rtcp = dtls._handle_rtp_data, dtls._handle_rtcp_data

        async def rtp(data: bytes, arrival_time_ms: int) -> None:
            self.rtp.append((time.monotonic(), int.from_bytes(data[8:12], "big"),
                             int.from_bytes(data[2:4], "big"), int.from_bytes(data[4:8], "big")))
            await handle_rtp(data, arrival_time_ms)

        async def rtcp(data: bytes) -> None:
            self.rtcp.append((time.monotonic(), bytes(data)))
            await handle_rtcp(data)

        dtls._handle_rtp_data = rtp
        dtls._handle_rtcp_data = rtcp

    def sender_reports(self, ssrc: int) -> list[tuple[float, int]]:
        """(arrival, packet count) of each RTCP SR from `ssrc`."""
        return [(t, int.from_bytes(d[20:24], "big")) for t, d in self.rtcp
                if len(d) >= 28 and d[1] == 200 and int.from_bytes(d[4:8], "big") == ssrc]


async def test_pause_rtp_stops_rtp_keeps_rtcp_and_sequence_numbers(gateway_factory, offerers):
    start, length = 1.5, 2.0
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo", faults=Faults(pause_rtp=(start, length)))
    caller = await offerers(loop=True)
    wire = WireLog()
    wire.install(caller.pc.getTransceivers()[0].receiver.transport)
    async with ws_connect(gateway.url) as ws:
        answer = await offer_and_answer(ws, caller, mode="echo")
        answered_at = time.monotonic()
        await caller.accept(answer)
        await caller.wait_connected(5)
        session = gateway.sessions[answer.session_id]
        await wait_until(lambda: session.rtp_pause is not None and session.rtp_pause.ended_at,
                         start + length + 3, "the pause to end")
        pause = session.rtp_pause
        ssrc = session.peer.getSenders()[0]._ssrc
        # wait for audio after the pause, and for a sender report after it
        await wait_until(lambda: sum(1 for t, *_ in wire.rtp if t > pause.ended_at) >= 25
                         and any(t > pause.ended_at + 0.1 for t, _ in wire.sender_reports(ssrc)), 4,
                         "RTP and an RTCP SR after the pause")
        assert caller.pc.connectionState == "connected", "ICE consent and DTLS survive the silence"
    assert pause.started_at - answered_at >= start - 0.05
    assert length - 0.05 <= pause.ended_at - pause.started_at <= length + 0.3
    assert pause.swallowed >= int(length / 0.02) - 5

    ours = [p for p in wire.rtp if p[1] == ssrc]
    assert len(ours) == len(wire.rtp), "only the gateway's audio arrives"
    assert sum(1 for t, *_ in ours if t < pause.started_at) >= 10, "audio flowed before the pause"
    inside = [p for p in ours if pause.started_at + 0.1 < p[0] < pause.ended_at]
    assert inside == [], f"{len(inside)} RTP packets arrived during the pause"
    rtcp_inside = [t for t, _ in wire.rtcp if pause.started_at < t < pause.ended_at]
    assert rtcp_inside, "RTCP keeps flowing during the pause"
    # sequence numbers continuous across the silence; RTP time jumps by the pause
    for (_, _, seq1, _), (_, _, seq2, _) in zip(ours, ours[1:]):
        assert (seq2 - seq1) & 0xFFFF == 1, (seq1, seq2)
    i = next(i for i, p in enumerate(ours) if p[0] > pause.started_at + 0.1)
    jump = (ours[i][3] - ours[i - 1][3]) & 0xFFFFFFFF
    assert (length - 0.15) * 48000 <= jump <= (length + 0.3) * 48000, jump
    # sender reports count what went on the wire, not what was swallowed
    reports = wire.sender_reports(ssrc)
    (t1, count1) = next(r for r in reports if pause.started_at < r[0] < pause.ended_at)
    (t2, count2) = next(r for r in reports if r[0] > pause.ended_at + 0.1)
    received = sum(1 for t, *_ in ours if t1 < t <= t2)
    assert abs(((count2 - count1) & 0xFFFFFFFF) - received) <= 3, (count1, count2, received)


# --- 5. bad trickled candidates --------------------------------------------------------------


async def test_bad_candidates_follow_the_real_ones(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo", faults=Faults(bad_candidates=True))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws:
        answer = await offer_and_answer(ws, caller)
        sid = answer.session_id
        frames = await raw_frames_until_quiet(ws)
        real = gateway.sessions[sid].local_candidates
        assert real
        first, last = real[0], real[-1]
        sent_real = [protocol.encode(IceCandidate(sid, c)) for c in real]
        assert frames == sent_real + bad_candidate_frames(sid, real)
        bad = [json.loads(f) for f in frames[len(real):]]
        assert all(f["type"] == "ice-candidate" and f["sessionId"] == sid for f in bad)
        mline = {"sdpMid": first.sdp_mid, "sdpMLineIndex": first.sdp_mline_index}
        assert [f["data"] for f in bad] == [
            {"candidate": "candidate:1 1 udp 2130706431", **mline},
            {"candidate": "candidate:garbage here", **mline},
            {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 port typ host", **mline},
            {"candidate": first.candidate, **mline},
            {"candidate": first.candidate, "sdpMid": first.sdp_mid, "sdpMLineIndex": "0"},
            {"candidate": last.candidate, "sdpMid": last.sdp_mid},
            {"candidate": "", **mline},
        ]
        assert frames[len(real)] != frames[0] and frames[len(real) + 3] == frames[0]  # a duplicate
        # each of the first three is one aiortc cannot take
        for data, error in zip(bad[:3], (AssertionError, AssertionError, ValueError)):
            with pytest.raises(error):
                candidate_from_sdp(data["data"]["candidate"].removeprefix("candidate:"))
        # the call itself is fine
        await caller.accept(answer)
        await caller.wait_connected(5)


def test_bad_candidate_frames_without_real_candidates():
    frames = [json.loads(f)["data"]["candidate"] for f in bad_candidate_frames("s", [])]
    assert frames == ["candidate:1 1 udp 2130706431", "candidate:garbage here",
                      "candidate:1 1 udp 2130706431 127.0.0.1 port typ host", ""]
    real = [Candidate("candidate:7 1 udp 1 10.0.0.1 5000 typ host", "a", 1)]
    assert len(bad_candidate_frames("s", real)) == 7


# --- 6. sessions bound to their socket -----------------------------------------------------


async def test_no_resume_dropped_socket_ends_the_session(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo", faults=Faults(no_resume=True))
    caller = await offerers(loop=True)
    own = [ln[2:] for ln in caller.sdp.splitlines() if ln.startswith("a=candidate:")]
    async with ws_connect(gateway.url) as ws1:
        answer = await offer_and_answer(ws1, caller)
        sid = answer.session_id
        await caller.accept(answer)
        await caller.wait_connected(5)
        dropped_at = time.monotonic()
        ws1.transport.abort()  # the socket drops (no closing handshake)
    await wait_until(lambda: sid in gateway.ended, 2, "the session ended with its socket")
    assert time.monotonic() - dropped_at < 1.0, "no grace period"
    assert gateway.ended[sid] == "signaling lost" and sid not in gateway.sessions
    await wait_until(lambda: caller.pc.connectionState in ("closed", "failed"), 5, "caller peer ends")
    async with ws_connect(gateway.url) as ws2:
        await ws2.send(protocol.encode(IceCandidate(sid, Candidate(own[0], "0", 0))))
        await expect_unknown_session(ws2, sid)
        await ws2.send(protocol.encode(protocol.Close(sid)))
        await expect_unknown_session(ws2, sid)
        await ws2.send(protocol.encode(protocol.Offer(sdp=caller.sdp, auth_token=TOKEN, session_id=sid)))
        await expect_unknown_session(ws2, sid)
        with pytest.raises(asyncio.TimeoutError):
            await recv_raw(ws2, 0.3)  # once per frame
    assert gateway.sessions == {}


async def test_no_resume_other_socket_cannot_reach_a_live_session(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo", faults=Faults(no_resume=True))
    caller = await offerers()
    async with ws_connect(gateway.url) as ws1, ws_connect(gateway.url) as ws2:
        answer = await offer_and_answer(ws1, caller)
        sid = answer.session_id
        await ws2.send(protocol.encode(protocol.Close(sid)))
        await expect_unknown_session(ws2, sid)
        session = gateway.sessions[sid]
        assert session.ws is not None and session.reattachments == 0 and not session.closed
        await ws1.send(protocol.encode(protocol.Close(sid)))  # its own socket still reaches it
        await wait_until(lambda: sid in gateway.ended, 3, "closed from its own socket")
        assert gateway.ended[sid] == "closed by the client"


# --- the command line ---------------------------------------------------------------------------


def test_gateway_help_lists_every_new_flag():
    out = subprocess.run([sys.executable, "-m", "polyphone", "gateway", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    group = out.stdout[out.stdout.index("fault injection"):]
    for flag in NEW_FLAGS:
        assert flag in group, flag
    for shape in ERROR_SHAPES:
        assert shape in group


def test_gateway_flags_parse():
    parser = argparse.ArgumentParser()
    gateway_cli.add_arguments(parser)
    args = parser.parse_args(["--hangup-after", "2", "--hangup-code", "4001", "--hangup-reason", "bye",
                              "--close-after", "1", "--close-without-session", "--error-shape", "no-data",
                              "--pause-rtp", "2:20", "--bad-candidates", "--no-resume"])
    assert (args.hangup_after, args.hangup_code, args.hangup_reason) == (2.0, 4001, "bye")
    assert args.close_without_session and args.bad_candidates and args.no_resume
    assert args.error_shape == "no-data" and args.pause_rtp == (2.0, 20.0)
    for bad in (["--hangup-code", "1005"], ["--hangup-code", "x"], ["--pause-rtp", "2"],
                ["--pause-rtp", "2:0"], ["--error-shape", "odd"], ["--hangup-reason", "é" * 62]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
