"""`polyphone call` as a user runs it: a real process, a real local gateway, exit codes, JSON."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_polyphone
from polyphone import protocol
from polyphone.localgw import Faults

TOKEN = "cli-token-8d2e77"
pytestmark = pytest.mark.integration


async def polyphone(*args: str, token: str | None = TOKEN, tmp: Path,
                    timeout: float = 40) -> tuple[int, str, str]:
    return await run_polyphone(*args, tmp=tmp, token=token, timeout=timeout)


async def test_echo_call_exit_0_with_json_and_a_recording(gateway_factory, tmp_path) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    rec = tmp_path / "reply.wav"
    code, out, err = await polyphone("call", "--url", gw.url, "--mode", "echo", "--json",
                                     "--duration", "1.5", "--record", str(rec), tmp=tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["result"] == "ended" and report["error"] is None
    assert report["sessionId"] and len(report["callSid"]) == 36
    assert set(report["timings_ms"]) == {"ws_open", "answer", "ice_connected", "first_audio"}
    assert all(v is not None and v > 0 for v in report["timings_ms"].values())
    assert report["stats"]["packets_received"] > 0
    with wave.open(str(rec)) as w:
        assert w.getframerate() == 48_000 and w.getnframes() > 48_000
    assert TOKEN not in out + err


@pytest.mark.parametrize("code", [c.value for c in protocol.ErrorCode])
async def test_gateway_error_codes_exit_3_with_explanation(gateway_factory, tmp_path, code) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(error_code=code))
    rc, out, err = await polyphone("call", "--url", gw.url, "--json", tmp=tmp_path)
    assert rc == 3
    assert f"{code}: {protocol.ErrorCode(code).explanation}" in err
    assert json.loads(out)["error"]["code"] == code
    assert TOKEN not in out + err


async def test_a_wrong_token_is_unauthorized_and_never_printed(gateway_factory, tmp_path) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    rc, out, err = await polyphone("call", "--url", gw.url, "-v", tmp=tmp_path,
                                   token="wrong-token-51ab")
    assert rc == 3 and "UNAUTHORIZED" in err
    assert "wrong-token-51ab" not in out + err


async def test_no_answer_exits_5(gateway_factory, tmp_path) -> None:
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(never_answer=True))
    rc, _, err = await polyphone("call", "--url", gw.url, "--answer-timeout", "0.5", tmp=tmp_path)
    assert rc == 5 and "did not answer" in err


async def test_unreachable_gateway_exits_4(tmp_path) -> None:
    rc, _, err = await polyphone("call", "--url", "ws://127.0.0.1:9/api/v1/webrtc/signal",
                                 tmp=tmp_path)
    assert rc == 4 and "Could not connect" in err


async def test_usage_errors_exit_2(tmp_path) -> None:
    rc, _, err = await polyphone("call", "--url", "ws://gateway.example.com/x", tmp=tmp_path)
    assert rc == 2 and "ws://" in err and "wss://" in err
    rc, _, err = await polyphone("call", "--url", "ws://127.0.0.1:9/x", tmp=tmp_path, token=None)
    assert rc == 2 and "No token" in err
    rc, _, err = await polyphone("call", "--play", str(tmp_path / "missing.wav"), tmp=tmp_path)
    assert rc == 2 and "no such file" in err
    rc, _, _ = await polyphone("call", "--bogus-flag", tmp=tmp_path)
    assert rc == 2


async def test_demo_call_to_the_embedded_gateway(tmp_path) -> None:
    """What the README's run command does today: the demo agent greets, then answers."""
    code, out, err = await polyphone("call", "--demo", "--json", tmp=tmp_path, token=None,
                                     timeout=60)
    assert code == 0, err
    report = json.loads(out)
    assert report["result"] == "ended"
    rec = tmp_path / "data" / "recordings" / "demo-reply.wav"
    with wave.open(str(rec)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(float)
    frames = pcm[: len(pcm) // 960 * 960].reshape(-1, 960)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > 300
    # the greeting at the start, then silence, then the reply to the prompt
    assert loud[:50].mean() > 0.5
    assert loud[-300:].sum() > 50


async def test_captions_of_a_call_on_sound_devices(gateway_factory, sound_server, tmp_path) -> None:
    """`polyphone call --input --output --captions`: the virtual microphone speaks (espeak-ng),
    the echo agent says it back, both sides are printed as they are recognised."""
    from polyphone.speech import voice

    gw = await gateway_factory(tokens=[TOKEN])
    line = voice.render("I would like to book a table for two")
    feeder = sound_server.play_into_mic(np.concatenate([np.zeros(48_000 * 3, np.int16), line]), wait=False)
    try:
        code, out, err = await run_polyphone(
            "call", "--url", gw.url, "--mode", "echo", "--no-ice-fetch", "--input", "VirtualMic",
            "--output", "default", "--no-processing", "--captions", "--duration", "9", "--json",
            tmp=tmp_path, token=TOKEN, env=sound_server.child_env(), timeout=60)
    finally:
        feeder.wait(10)
    assert code == 0, err
    assert "[captions] pocketsphinx" in err
    assert any(line.startswith("[you] ") and "table for two" in line for line in err.splitlines()), err
    assert any(line.startswith("[agent] ") and "table" in line for line in err.splitlines()), err
    transcript = json.loads(out)["transcript"]
    assert {u["who"] for u in transcript} == {"caller", "agent"}
    code, _, err = await run_polyphone("call", "--url", gw.url, "--captions", tmp=tmp_path, token=TOKEN)
    assert code == 2 and "--captions transcribes a call on sound devices" in err
