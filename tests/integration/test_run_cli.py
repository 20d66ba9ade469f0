"""`polyphone run` as a user runs it: a real process, the real local gateway's demo agent."""

from __future__ import annotations

import json
import shutil
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_polyphone
from polyphone.paths import resource

TOKEN = "run-cli-token-6f20b4"
pytestmark = pytest.mark.integration


async def polyphone(*args: str, tmp: Path, timeout: float = 150) -> tuple[int, str, str]:
    return await run_polyphone(*args, tmp=tmp, token=TOKEN, timeout=timeout)


async def test_barge_in_script_end_to_end(gateway_factory, tmp_path) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    out = tmp_path / "out"
    code, stdout, err = await polyphone("run", str(resource("scripts/barge_in.toml")), "--url", gw.url,
                                        "--no-ice-fetch", "--out", str(out), "--json", tmp=tmp_path)
    assert code == 0, err
    run = json.loads(stdout)["runs"][0]
    assert run["ok"] and run["session_id"] and run["call_sid"]
    assert run["timings_ms"]["first_audio"] > 0 and len(run["stats_series"]) >= 5
    first, barge = run["turns"]
    assert first["kind"] == "play" and 800 < first["response_latency_ms"] < 1200   # think 600 + 300
    assert barge["kind"] == "barge_in" and barge["barged_in"] and barge["stopped_after_barge_in"]
    assert 0 < barge["barge_in_stop_ms"] < 300
    folder = out / "call"
    assert {"recording.wav", "report.json", "report.html", "bundle.zip"} <= {p.name for p in folder.iterdir()}
    with wave.open(str(folder / "recording.wav")) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 48_000
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    assert np.abs(pcm[:, 0]).max() > 3000 and np.abs(pcm[:, 1]).max() > 3000   # caller left, agent right
    with zipfile.ZipFile(folder / "bundle.zip") as z:
        assert "recording.wav" in z.namelist() and "turns.csv" in z.namelist()
    html = (folder / "report.html").read_text()
    assert "<svg" in html and "barge_in" in html
    assert "[turn 2] barge_in" in err and "stopped" in err
    assert TOKEN not in stdout + err


async def test_ab_run_tells_a_real_difference_from_noise(gateway_factory, tmp_path) -> None:
    """think-300 against itself (as a build) and against think-1200, two calls each, interleaved."""
    gw = await gateway_factory(tokens=[TOKEN])
    shutil.copy(resource("scripts/hi-there.wav"), tmp_path / "hi.wav")
    script = tmp_path / "one_turn.toml"
    script.write_text('name = "one turn"\n[target]\nmode = "end-to-end"\n'
                      '[[step]]\nwait_for_agent = {}\n[[step]]\nplay = "hi.wav"\n'
                      '[[step]]\nwait_for_agent = {}\n')
    code, stdout, err = await polyphone(
        "run", str(script), "--url", gw.url, "--no-ice-fetch", "--out", str(tmp_path / "ab"), "--json",
        "--variant", "think-300", "--version", "think-300", "--variant", "think-1200", "--repeat", "2",
        tmp=tmp_path)
    assert code == 0, err
    report = json.loads(stdout)
    calls = [line.split("→ ")[1] for line in err.splitlines() if line.startswith("[run]") and "→" in line]
    assert calls == ["variant think-300 (call 1 of 2)", "variant think-1200 (call 1 of 2)",
                     "build think-300 (call 1 of 2)", "variant think-300 (call 2 of 2)",
                     "variant think-1200 (call 2 of 2)", "build think-300 (call 2 of 2)"]  # interleaved
    assert all(r["ok"] for r in report["runs"])
    verdicts = {c["target"]: c for c in report["summary"]["comparisons"]}
    assert verdicts["build think-300"]["verdict"] == "within noise"
    assert verdicts["variant think-1200"]["verdict"] == "beyond noise"
    assert 850 < verdicts["variant think-1200"]["difference_ms"] < 950
    assert (tmp_path / "ab" / "summary.html").read_text().count("report.html") == 6
    assert "(within noise)" in err and "(beyond noise)" in err
