"""Caller scripts' text lines, keys and expectations; the verdicts at a pass rate; JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from polyphone.runs.events import TurnResult
from polyphone.runs.judge import judge
from polyphone.runs.runner import RunResult
from polyphone.runs.script import Line, ScriptError, parse_script
from polyphone.runs.suite import Case, exit_code, junit_xml, script_files

TEXT_ONLY = """
name = "Booking"
[expect]
max_setup_ms = 3000
no_warnings = true
[[step]]
wait_for_agent = { expect = { heard = "hello", latency_ms_max = 2000 } }
[[step]]
say = "I'd like to book   a table for two"
[[step]]
wait_for_agent = { expect = { heard = "table for two", latency_ms_max = 1500 } }
[[step]]
dtmf = "12#a"
[[step]]
wait_for_agent = {}
[[step]]
barge_in = { say = { text = "Sorry", voice = "en-gb", rate = 200 }, after_ms = 300, \
             expect = { stop_ms_max = 600 } }
"""


def parse(text: str):
    return parse_script(text, Path("/tmp/x.toml"))


def test_a_text_only_script_parses() -> None:
    s = parse(TEXT_ONLY)
    kinds = [st.kind for st in s.steps]
    assert kinds == ["wait_for_agent", "say", "wait_for_agent", "dtmf", "wait_for_agent", "barge_in"]
    assert s.steps[1].line == Line(text="I'd like to book a table for two")
    assert s.steps[3].line == Line(digits="12#A")
    assert s.steps[5].line == Line(text="Sorry", voice="en-gb", rate=200)
    assert s.steps[5].expect.stop_ms_max == 600 and s.steps[5].ms == 300
    assert s.steps[2].expect.heard == "table for two" and s.steps[2].expect.latency_ms_max == 1500
    assert s.expect.max_setup_ms == 3000 and s.expect.no_warnings
    assert "press 12#A" in s.steps[3].describe() and "say" in s.steps[1].describe()


@pytest.mark.parametrize("step, words", [
    ('say = ""', "say needs the words"),
    ('say = { text = "hi", speed = 3 }', "say does not know speed"),
    ('say = { text = "hi", rate = 20 }', "rate must be"),
    ('dtmf = "12x"', "dtmf takes the keys"),
    ('dtmf = 5', "dtmf takes the keys"),
    ('wait_for_agent = { expect = { heard = "x", stop_ms_max = 5 } }', "expect does not know stop_ms_max"),
    ('wait_for_agent = { expect = { latency_ms_max = -1 } }', "latency_ms_max must be"),
    ('wait_for_agent = { expect = { heard = "?!" } }', "expect.heard must be the words"),
    ('wait_for_agent = { expect = "table" }', "expect takes a table"),
    ('barge_in = { after_ms = 5 }', "one of play (a WAV) or say"),
    ('barge_in = { say = "a", play = "b.wav" }', "one of play (a WAV) or say"),
])
def test_bad_steps_say_what_is_wrong(step: str, words: str) -> None:
    with pytest.raises(ScriptError) as err:
        parse(f"[[step]]\n{step}\n")
    assert words in str(err.value) and "step 1" in str(err.value)


def test_bad_script_expectations() -> None:
    with pytest.raises(ScriptError, match="no_warnings must be true or false"):
        parse('[expect]\nno_warnings = "yes"\n[[step]]\nhangup = true\n')
    with pytest.raises(ScriptError, match="expect does not know max_turns"):
        parse('[expect]\nmax_turns = 3\n[[step]]\nhangup = true\n')


def turn(n: int, start: float, end: float, latency: float | None, **kw) -> TurnResult:
    return TurnResult(n, kw.pop("kind", "say"), start, end, latency, 800.0, **kw)


def result_with(turns, transcript, warnings=(), first_audio=900.0, ok=True) -> RunResult:
    r = RunResult("Booking", "local", "/tmp/out", "now", ok=ok)
    r.turns, r.transcript, r.warnings = list(turns), transcript, list(warnings)
    r.timings_ms = {"first_audio": first_audio}
    return r


def said(who: str, start_s: float, text: str) -> dict:
    start = round(start_s * 1000)
    return {"who": who, "start_ms": start, "end_ms": start + 900, "text": text}


def test_judge_puts_each_expectation_on_its_turn() -> None:
    s = parse(TEXT_ONLY)
    turns = [turn(1, 3.0, 5.0, 700.0), turn(2, 8.0, 9.0, 1200.0),
             turn(3, 12.0, 12.5, None, kind="barge_in", barged_in=True, stopped_after_barge_in=True,
                  barge_in_stop_ms=450.0)]
    transcript = [said("agent", 0.4, "hello how can I help"),
                  said("caller", 3.1, "i'd like to book a table"),
                  said("agent", 5.7, "a table for to at what time"),
                  said("agent", 9.5, "you pressed one two")]
    r = result_with(turns, transcript)
    judge(s, r, {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3}, greeting_ms=400.0, transcript=transcript,
          heard_threshold=0.6)
    t1 = {c["what"]: c for c in r.turns[0].expectations}
    assert t1["heard"]["passed"] and "match" in t1["heard"]["actual"]            # "for to" ~ "for two"
    assert t1["latency_ms"] == {"what": "latency_ms", "expected": "<= 1500 ms", "actual": "700 ms",
                                "passed": True}
    assert r.turns[0].agent_said == "a table for to at what time"
    assert r.turns[0].caller_said == "i'd like to book a table"
    assert r.turns[1].expectations == ()
    assert [c["what"] for c in r.turns[2].expectations] == ["barge_in_stop_ms"]
    assert r.turns[2].expectations[0]["passed"]
    own = {c["what"]: c for c in r.expectations}
    assert own["greeting heard"]["passed"] and own["greeting latency_ms"]["actual"] == "400 ms"
    assert own["setup_ms"]["passed"] and own["no_warnings"]["passed"]
    assert r.passed


def test_unmet_expectations_fail_the_call_with_evidence() -> None:
    s = parse(TEXT_ONLY)
    turns = [turn(1, 3.0, 5.0, 2100.0)]
    transcript = [said("agent", 7.1, "sorry I did not get that")]
    r = result_with(turns, transcript, warnings=[{"active": True, "message": "packet loss 12 %"}],
                    first_audio=4200.0)
    judge(s, r, {1: 0, 2: 1, 3: 1}, greeting_ms=None, transcript=transcript, heard_threshold=0.6)
    checks = {c["what"]: c for c in r.turns[0].expectations}
    assert not checks["heard"]["passed"] and "sorry I did not get that" in checks["heard"]["actual"]
    assert not checks["latency_ms"]["passed"] and checks["latency_ms"]["actual"] == "2100 ms"
    own = {c["what"]: c for c in r.expectations}
    assert own["greeting latency_ms"]["actual"] == "no reply"
    assert own["greeting heard"]["actual"].startswith("(nothing recognised)")
    assert not own["setup_ms"]["passed"] and own["no_warnings"]["actual"] == "packet loss 12 %"
    assert own["step 6"]["actual"] == "the call ended before this step"        # step 6 never ran
    assert not r.passed


def test_without_a_transcript_heard_fails_and_says_why() -> None:
    s = parse('[[step]]\nsay = "hi"\n[[step]]\nwait_for_agent = { expect = { heard = "hello" } }\n')
    r = result_with([turn(1, 1.0, 2.0, 500.0)], None)
    judge(s, r, {1: 1, 2: 1}, greeting_ms=None, transcript=None, heard_threshold=0.6)
    assert "no transcript" in r.turns[0].expectations[0]["actual"] and not r.passed
    assert r.turns[0].agent_said is None


def test_a_call_that_failed_does_not_pass_even_without_expectations() -> None:
    s = parse('[[step]]\nsay = "hi"\n')
    r = result_with([], [], ok=False)
    judge(s, r, {}, greeting_ms=None, transcript=[], heard_threshold=0.6)
    assert r.expectations == [] and not r.passed


def run(passed: bool, ok: bool = True, **kw) -> RunResult:
    r = RunResult("s", "t", kw.get("out", "/tmp/call"), "now", ok=ok, duration_s=2.5)
    r.passed = passed
    if not ok:
        r.error = {"kind": "gateway", "message": "The gateway refused the call.", "action": "Check the id."}
    r.expectations = [{"what": "setup_ms", "expected": "<= 10 ms", "actual": "900 ms", "passed": passed}]
    return r


def test_pass_rate() -> None:
    five = [run(True), run(True), run(True), run(False), run(False)]
    assert Case("s", "s.toml", "t", 0.6, five).passed
    assert not Case("s", "s.toml", "t", 0.8, five).passed
    assert Case("s", "s.toml", "t", 0.8, five).summary() == "3 of 5 calls passed (needs 4, pass rate 80%)"
    assert not Case("s", "s.toml", "t", 0.01, [run(False)]).passed      # at least one call must pass
    assert not Case("s", "s.toml", "t", 1.0, []).passed


def test_exit_codes() -> None:
    good = Case("a", "a.toml", "t", 1.0, [run(True)])
    unmet = Case("b", "b.toml", "t", 1.0, [run(False)])
    broken = Case("c", "c.toml", "t", 1.0, [run(False, ok=False)])
    assert exit_code([good], 3) == 0
    assert exit_code([good, unmet], 3) == 1
    assert exit_code([good, unmet, broken], 3) == 3


def test_junit_has_a_case_per_script_and_target_with_the_evidence() -> None:
    cases = [Case("Booking", "/s/booking.toml", "variant A", 1.0, [run(True)]),
             Case("Booking", "/s/booking.toml", "variant B", 1.0, [run(True), run(False, out="/tmp/b-2")]),
             Case("Cancel", "/s/cancel.toml", "default target", 1.0, [run(False, ok=False)])]
    root = ET.fromstring(junit_xml(cases))
    assert root.tag == "testsuite" and root.get("tests") == "3" and root.get("failures") == "2"
    tc = root.findall("testcase")
    assert [t.get("name") for t in tc] == ["Booking [variant A]", "Booking [variant B]",
                                           "Cancel [default target]"]
    assert tc[0].find("failure") is None and float(tc[1].get("time")) == 5.0
    f = tc[1].find("failure")
    assert f.get("message") == "1 of 2 calls passed (needs 2, pass rate 100%)"
    assert f.get("type") == "expectation"
    assert "call 2 (/tmp/b-2):" in f.text and "setup_ms: expected <= 10 ms, got 900 ms" in f.text
    f = tc[2].find("failure")
    assert f.get("type") == "call" and "The gateway refused the call. Check the id." in f.text


def test_script_files_from_folders(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.toml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    one = tmp_path / "b.toml"
    assert script_files([str(tmp_path), str(one)]) == [tmp_path / "b.toml", tmp_path / "sub" / "a.toml"]
    # a missing file is kept: load_script then says there is no such script
    assert script_files([str(tmp_path / "empty")]) == [tmp_path / "empty"]
