"""A call to the local gateway's demo agent that presses keys: DTMF as audio, through Opus.

A real aiortc caller on 127.0.0.1 (`iceServers=[]`) sends keypad tones; the gateway's log
names the digits, and the agent answers once (spoken, or the tones played back when the
voice is unavailable) instead of saying the tones back as if they were words.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from websockets.asyncio.client import connect

from helpers.gateway_caller import recv_message, wait_until
from polyphone.audio.analysis import level_dbfs
from polyphone.audio.dtmf import DtmfDetector, tones
from polyphone.audio.files import FRAME_SAMPLES, SAMPLE_RATE
from polyphone.protocol import Answer

pytestmark = pytest.mark.integration

TOKEN = "token"
KEYS = "1234567890*#"


def digits_in(pcm: np.ndarray) -> str:
    detector = DtmfDetector()
    for i in range(0, len(pcm), FRAME_SAMPLES):
        detector.feed(pcm[i:i + FRAME_SAMPLES])
    return detector.heard


def loud_seconds(pcm: np.ndarray, floor_dbfs: float = -45.0) -> float:
    frames = [pcm[i:i + FRAME_SAMPLES] for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    return sum(level_dbfs(f) > floor_dbfs for f in frames) * FRAME_SAMPLES / SAMPLE_RATE


async def press_keys(gateway_factory, offerers, caplog) -> tuple[object, str, np.ndarray, np.ndarray]:
    """Call the demo agent, press KEYS half a second in; return the agent, the session id, what
    the caller heard before the digits were taken, and the reply (from then on, 2.5 s or more)."""
    caplog.set_level(logging.INFO, logger="polyphone.localgw")
    gateway = await gateway_factory(tokens=[TOKEN], think_ms=100)
    caller = await offerers(np.concatenate([np.zeros(SAMPLE_RATE // 2, np.int16), tones(KEYS),
                                            np.zeros(SAMPLE_RATE * 10, np.int16)]))
    async with connect(gateway.url, proxy=None, open_timeout=5, close_timeout=2) as ws:
        await ws.send(caller.offer(TOKEN))  # no mode: end-to-end, the demo agent
        answer = await recv_message(ws)
        assert isinstance(answer, Answer), answer
        agent = gateway.sessions[answer.session_id].agent
        await caller.accept(answer)
        await caller.wait_connected(5)
        # 0.5 s + 2.3 s of keys + 1.5 s without a new one, then the digits are logged
        await wait_until(lambda: agent.keypad.sequences, 8, "the digits to be taken")
        taken_at = len(caller.sink.samples)
        await wait_until(lambda: agent.turns == 1, 3, "the agent's reply to start")
        await wait_until(lambda: len(caller.sink.samples) >= taken_at + SAMPLE_RATE * 2.5, 5,
                         "2.5 s of the reply")
        assert agent.turns == 1 and agent.logic.keypad_turns >= 1, "the tones were not said back"
    received = caller.sink.samples
    return agent, answer.session_id, received[:taken_at], received[taken_at:]


def assert_logged_once(caplog, agent, session_id: str) -> None:
    pressed = [r for r in caplog.records if "caller pressed" in r.getMessage()]
    assert len(pressed) == 1, [r.getMessage() for r in pressed]
    assert pressed[0].levelno == logging.INFO
    assert pressed[0].name.startswith("polyphone.localgw")
    assert agent.keypad.session_id == session_id       # the gateway tells the agent its session
    assert pressed[0].getMessage() == f"session {session_id}: caller pressed {KEYS}"


async def test_the_demo_agent_hears_the_keys_and_answers(gateway_factory, offerers, caplog):
    agent, session_id, before, reply = await press_keys(gateway_factory, offerers, caplog)
    assert_logged_once(caplog, agent, session_id)
    assert agent.keypad.sequences == [KEYS]
    assert agent.barge_ins == 1, "the keys interrupt the greeting"
    assert level_dbfs(before[-SAMPLE_RATE // 2:]) < -60, "quiet while the keys are collected"
    assert loud_seconds(reply) >= 1.0, "the agent answers"
    if agent.keypad.reply_kinds == ["voice"]:
        assert digits_in(reply) == "", "a spoken answer, not tones"
    else:
        assert agent.keypad.reply_kinds == ["tones"]
        assert digits_in(reply) == KEYS


async def test_without_the_voice_the_agent_plays_the_tones_back(gateway_factory, offerers, caplog,
                                                                monkeypatch):
    from polyphone.speech import voice

    def no_voice(*args, **kwargs):
        raise RuntimeError("no voice here")

    monkeypatch.setattr(voice, "render", no_voice)
    agent, session_id, _, reply = await press_keys(gateway_factory, offerers, caplog)
    assert_logged_once(caplog, agent, session_id)
    assert agent.keypad.reply_kinds == ["tones"]
    assert digits_in(reply) == KEYS, "the same digits, through Opus both ways"
