"""`polyphone call --concurrency N`: N real calls at once from one process, against the real gateway."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from helpers.cli import run_polyphone
from polyphone.paths import resource

TOKEN = "load-token-3a9e51"
pytestmark = pytest.mark.integration


async def polyphone(*args: str, tmp: Path, timeout: float = 60) -> tuple[int, str, str]:
    return await run_polyphone(*args, tmp=tmp, token=TOKEN, timeout=timeout)


async def test_three_calls_at_once_each_recorded_with_deadline_figures(gateway_factory, tmp_path) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    rec = tmp_path / "reply.wav"
    code, out, err = await polyphone(
        "call", "--url", gw.url, "--mode", "echo", "--concurrency", "3", "--duration", "3",
        "--play", str(resource("sounds/caller-demo.wav")), "--record", str(rec), "--json", tmp=tmp_path)
    assert code == 0, err
    report = json.loads(out)
    agg = report["aggregate"]
    assert report["concurrency"] == 3 and agg["calls"] == 3 and agg["connected"] == 3
    assert agg["failures"] == {} and agg["setup_ms"]["median"] > 0
    assert set(agg) >= {"send_late_share", "receive_gap_share", "loop_lag_ms", "deadlines_met"}
    sids = {c["sessionId"] for c in report["calls"]}
    assert len(sids) == 3 and None not in sids                  # three sessions, not one
    assert len({c["callSid"] for c in report["calls"]}) == 3
    for c in report["calls"]:
        assert c["result"] == "ended" and c["send"]["frames"] >= 100
        assert c["receive"]["intervals"] > 50                   # the echo came back on every call
        with wave.open(c["recording"]) as w:
            assert w.getnframes() > 48_000
    assert sorted(Path(c["recording"]).name for c in report["calls"]) == \
        ["reply-1.wav", "reply-2.wav", "reply-3.wav"]
    assert "3/3 connected" in err
    assert TOKEN not in out + err


async def test_bad_concurrency_is_a_usage_error(tmp_path) -> None:
    code, _, err = await polyphone("call", "--url", "ws://127.0.0.1:9/x", "--concurrency", "0", tmp=tmp_path)
    assert code == 2 and "--concurrency must be 1 or more" in err
    code, _, err = await polyphone("call", "--url", "ws://127.0.0.1:9/x", "--concurrency", "2",
                                   "--input", "default", tmp=tmp_path)
    assert code == 2 and "not sound devices" in err
