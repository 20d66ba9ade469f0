"""The local gateway's `drop_packet_after` fault: exactly one outbound RTP audio packet lost.

A real aiortc caller on loopback records every RTP packet its receiver gets
(sequence number, timestamp), so the test sees the loss as a receiver does.
"""

from __future__ import annotations

import time

import pytest
from websockets.asyncio.client import connect

from helpers.gateway_caller import recv_message, wait_until
from polyphone.audio import jitter
from polyphone.localgw import Faults
from polyphone.protocol import Answer

pytestmark = pytest.mark.integration

TOKEN = "token"


def record_packets(buffer: jitter.ReleasingBuffer) -> None:
    """Note (arrival time, sequence number, RTP timestamp) of each packet the buffer gets."""
    buffer.packets = []
    add = buffer.add

    def recording_add(packet):
        buffer.packets.append((time.monotonic(), packet.sequence_number, packet.timestamp))
        return add(packet)

    buffer.add = recording_add


async def call_and_record(gateway, offerers, seconds: float):
    caller = await offerers(loop=True)
    buffer = jitter.install(caller.pc.getTransceivers()[0].receiver)
    record_packets(buffer)
    async with connect(gateway.url, proxy=None, open_timeout=5) as ws:
        await ws.send(caller.offer(TOKEN, mode="echo"))
        answer = await recv_message(ws)
        answered_at = time.monotonic()
        assert isinstance(answer, Answer), answer
        await caller.accept(answer)
        await caller.wait_connected(5)
        session = gateway.sessions[answer.session_id]
        await wait_until(lambda: time.monotonic() - answered_at >= seconds, seconds + 5,
                         f"{seconds} s of call")
    return session, buffer, answered_at


async def test_drop_packet_after_loses_exactly_one_outbound_rtp_packet(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo", faults=Faults(drop_packet_after=0.8))
    session, buffer, answered_at = await call_and_record(gateway, offerers, 2.0)

    assert len(session.rtp_dropped) == 1, session.rtp_dropped
    assert session.counters()["rtp_dropped"] == 1
    dropped = session.rtp_dropped[0]
    assert dropped.at - answered_at >= 0.8 - 0.05  # not before it was due (clocks: same process)
    assert dropped.at - answered_at < 1.5          # and promptly
    seqs = [seq for _, seq, _ in buffer.packets]
    assert dropped.sequence_number not in seqs
    assert buffer.gaps == 1, "the receiver sees exactly one missing sequence number"
    # the packets on either side of the hole are consecutive in RTP time: 2 x 20 ms apart
    i = next(i for i, seq in enumerate(seqs) if seq == (dropped.sequence_number + 1) & 0xFFFF)
    _, before_seq, before_ts = buffer.packets[i - 1]
    _, _, after_ts = buffer.packets[i]
    assert before_seq == (dropped.sequence_number - 1) & 0xFFFF
    assert (dropped.timestamp - before_ts) & 0xFFFFFFFF == 960
    assert (after_ts - before_ts) & 0xFFFFFFFF == 1920
    # and audio kept flowing after it
    assert sum(1 for t, _, _ in buffer.packets if t > dropped.at + 0.5) >= 20


async def test_without_the_fault_nothing_is_dropped(gateway_factory, offerers):
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo")
    session, buffer, _ = await call_and_record(gateway, offerers, 1.0)
    assert session.rtp_dropped == []
    assert buffer.gaps == 0 and buffer.released >= 20
