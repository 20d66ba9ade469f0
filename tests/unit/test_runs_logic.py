"""Scripted runs' pure logic: reading scripts, the turn table, the A/B rule, the report."""

from __future__ import annotations

import json
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from polyphone.runs.ab import compare, summarise
from polyphone.runs.events import TurnResult
from polyphone.runs.report import latency_svg, turns_csv, write_run
from polyphone.runs.runner import RunResult
from polyphone.runs.script import ScriptError, load_script, parse_script
from polyphone.runs.turns import CallerTurn, turn_table

SECRET_TOKEN = "runs-token-0a9c4e77"


@pytest.fixture
def folder(tmp_path) -> Path:
    with wave.open(str(tmp_path / "hello.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(np.zeros(4800, np.int16).tobytes())
    return tmp_path


def script_text(steps: str, target: str = "") -> str:
    return f'name = "t"\n{target}\n{steps}'


def test_every_step_kind_and_the_target_are_read(folder) -> None:
    text = script_text("""
[[step]]
wait_for_agent = { silence_ms = 500, timeout_ms = 9000 }
[[step]]
play = "hello.wav"
[[step]]
pause = 250
[[step]]
barge_in = { play = "hello.wav", after_ms = 800 }
[[step]]
hangup = true
""", '[target]\nvariant = "think-300"\nversion = "art:7"\nmode = "end-to-end"')
    s = parse_script(text, folder / "s.toml")
    assert [st.kind for st in s.steps] == ["wait_for_agent", "play", "pause", "barge_in", "hangup"]
    assert s.steps[0].silence_ms == 500 and s.steps[0].timeout_ms == 9000
    assert s.steps[1].wav == (folder / "hello.wav").resolve() and s.steps[2].ms == 250
    assert s.steps[3].ms == 800 and s.steps[3].timeout_ms == 15_000
    assert s.target.variant == "think-300" and s.target.version == "art:7"
    assert "variant think-300" in s.target.label and "build art:7" in s.target.label
    assert all(st.describe() for st in s.steps)


@pytest.mark.parametrize("steps, words", [
    ("", "has no steps"),
    ('[[step]]\nplay = "missing.wav"', "step 1: there is no WAV file 'missing.wav'"),
    ("[[step]]\npause = -5", "step 1: pause must be a number"),
    ("[[step]]\nsing = true", "step 1: a step is exactly one of"),
    ('[[step]]\npause = 5\nplay = "hello.wav"', "step 1: a step is exactly one of"),
    ("[[step]]\nwait_for_agent = { loudness = 3 }", "step 1: wait_for_agent does not know loudness"),
    ("[[step]]\nbarge_in = 3", "step 1: barge_in takes a table"),
    ("[[step]\nplay = ", "is not valid TOML"),
    ('colour = "red"\n[[step]]\nhangup = true', "unknown top-level field(s) colour"),
])
def test_bad_scripts_say_which_step_and_what_to_fix(folder, steps, words) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(script_text(steps), folder / "s.toml")
    assert words in caught.value.message and caught.value.action


def test_a_missing_script_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ScriptError, match="There is no script"):
        load_script(tmp_path / "nope.toml")


def test_the_shipped_examples_load() -> None:
    from polyphone.paths import resource
    for name in ("question_and_answer.toml", "barge_in.toml"):
        script = load_script(resource(f"scripts/{name}"))
        assert script.steps and all(st.wav is None or st.wav.is_file() for st in script.steps)


def test_turn_table_latency_speaking_time_and_barge_in() -> None:
    caller = [CallerTurn("play", 1.0, 2.0), CallerTurn("barge_in", 4.0, 4.5), CallerTurn("play", 9.0, 9.5)]
    agent = [(0.0, 0.8),            # a greeting before the first turn: not a reply
             (2.6, 4.05),           # the reply to turn 1, interrupted 50 ms after the barge-in
             (5.4, 6.0)]            # the reply to the barge-in; turn 3 gets none
    rows = turn_table(caller, agent)
    assert [r.response_latency_ms for r in rows] == [600.0, 900.0, None]
    assert rows[0].agent_speaking_ms == 1450.0 and rows[1].agent_speaking_ms == 600.0
    assert rows[1].barged_in and rows[1].stopped_after_barge_in and rows[1].barge_in_stop_ms == 50.0
    assert not rows[0].barged_in and rows[0].stopped_after_barge_in is None


def test_an_agent_that_talks_through_a_barge_in_did_not_stop() -> None:
    rows = turn_table([CallerTurn("play", 1, 2), CallerTurn("barge_in", 4, 4.5)], [(2.5, 9.0)])
    assert rows[1].barged_in and rows[1].stopped_after_barge_in is False and rows[1].barge_in_stop_ms is None


def test_ab_rule_calls_clear_gaps_beyond_noise_and_overlaps_within() -> None:
    assert compare([600, 610, 605], [1500, 1510, 1490]) == (895.0, "beyond noise")
    assert compare([600, 620, 605], [610, 625, 600])[1] == "within noise"        # they overlap
    assert compare([600, 601, 600], [603, 604, 603])[1] == "within noise"        # apart, but 3 ms
    assert compare([], [1]) == (None, "not measured")


def result(folder: Path, latencies: list[float | None], ok: bool = True) -> RunResult:
    r = RunResult("s", "t", str(folder), "2026-01-01T00:00:00+00:00", ok=ok)
    r.turns = [TurnResult(i + 1, "play", i, i + 0.5, lat, 500.0) for i, lat in enumerate(latencies)]
    return r


def test_summary_per_target_and_turn(tmp_path) -> None:
    runs = {"A": [result(tmp_path, [600, 610]), result(tmp_path, [620, 600])],
            "B": [result(tmp_path, [1500, None]), result(tmp_path, [1510, 1490], ok=False)]}
    s = summarise(["A", "B"], runs)
    assert s["targets"]["A"]["turns"][0]["median_ms"] == 610.0
    assert s["targets"]["B"]["turns"][1]["n"] == 1 and s["targets"]["B"]["failures"] == 1
    assert [c["verdict"] for c in s["comparisons"]] == ["beyond noise", "beyond noise"]


def test_report_files_and_bundle_hold_no_token(tmp_path) -> None:
    r = result(tmp_path, [600.0, None])
    r.log = [{"t": 0.1, "level": "info", "source": "call", "text": f"oops {SECRET_TOKEN}"}]
    r.warnings = [{"kind": "rtt", "active": True, "value": 450.0, "threshold": 400.0, "t": 3.0,
                   "message": "The network is slow: the round trip is 450 ms."}]
    paths = write_run(r, token=SECRET_TOKEN)
    assert json.loads(paths["report.json"].read_text())["turns"][0]["response_latency_ms"] == 600.0
    assert "<svg" in paths["report.html"].read_text()
    assert "3 s: The network is slow" in paths["report.html"].read_text()
    with zipfile.ZipFile(paths["bundle.zip"]) as z:
        names = set(z.namelist())
        assert {"README.txt", "report.json", "stats.json", "signaling.log", "turns.csv",
                "facts.json"} <= names
        assert all(SECRET_TOKEN not in z.read(n).decode() for n in names)
        assert json.loads(z.read("facts.json"))["polyphone"]
    assert "response_latency_ms" in turns_csv(r).splitlines()[0]
    assert latency_svg({"A": [None]}).startswith("<p>")
