"""A caller script written only in text (`say`, `dtmf`, `expect`) against the local demo agent, as
CI runs it: a real `polyphone run` process, real espeak-ng speech, real Opus, real recognition
(pocketsphinx) of both sides; exit codes and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from helpers.cli import run_polyphone

TOKEN = "run-expect-token-91c3aa"
pytestmark = pytest.mark.integration

BOOKING = """
name = "Booking"
[target]
mode = "end-to-end"
[expect]
max_setup_ms = 5000
[[step]]
wait_for_agent = { silence_ms = 700, timeout_ms = 15000 }
[[step]]
say = "I would like to book a table for two"
[[step]]
wait_for_agent = { expect = { heard = "table for two", latency_ms_max = 3000 } }
[[step]]
dtmf = "1234#"
[[step]]
wait_for_agent = { expect = { heard = "you pressed one two three four", latency_ms_max = 4000 } }
"""

# The demo agent says the caller's line back, so it never says this; and no reply comes in 200 ms.
UNMET = """
name = "Cancel"
[target]
mode = "end-to-end"
[[step]]
say = "Please cancel my order"
[[step]]
wait_for_agent = { expect = { heard = "your order has been cancelled", latency_ms_max = 200 } }
"""


async def test_text_scripts_pass_and_fail_with_evidence_in_junit(gateway_factory, tmp_path: Path) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "booking.toml").write_text(BOOKING)
    (scripts / "unmet.toml").write_text(UNMET)
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    code, stdout, err = await run_polyphone(
        "run", str(scripts), "--url", gw.url, "--no-ice-fetch", "--out", str(out), "--junit", str(junit),
        "--json", tmp=tmp_path, token=TOKEN, timeout=150)
    assert code == 1, err                                     # one script's expectations were not met
    runs = {r["script"]: r for r in json.loads(stdout)["runs"]}
    booking, cancel = runs["Booking"], runs["Cancel"]

    assert booking["ok"] and booking["passed"], err
    said = [(u["who"], u["text"]) for u in booking["transcript"]]
    assert [w for w, _ in said].count("agent") >= 3 and ("caller" in [w for w, _ in said])
    first, keys = booking["turns"]
    assert first["kind"] == "say" and keys["kind"] == "dtmf"
    assert "table for two" in first["agent_said"]
    assert all(c["passed"] for c in first["expectations"] + keys["expectations"])
    assert [c["what"] for c in first["expectations"]] == ["heard", "latency_ms"]
    assert booking["expectations"][0]["what"] == "setup_ms" and booking["expectations"][0]["passed"]

    assert cancel["ok"] and not cancel["passed"]
    checks = {c["what"]: c for c in cancel["turns"][0]["expectations"]}
    assert not checks["heard"]["passed"] and "cancel my order" in checks["heard"]["actual"]
    assert not checks["latency_ms"]["passed"]

    suite = ET.parse(junit).getroot()
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"Booking [default target]", "Cancel [default target]"}
    assert cases["Booking [default target]"].find("failure") is None
    failure = cases["Cancel [default target]"].find("failure")
    assert failure.get("type") == "expectation" and "0 of 1 calls passed" in failure.get("message")
    assert "heard: expected your order has been cancelled, got" in failure.text
    assert "latency_ms: expected <= 200 ms" in failure.text
    assert "[PASS] Booking" in err and "[FAIL] Cancel" in err

    report = (out / "booking" / "call" / "report.html").read_text()
    assert "Transcript" in report and "table for two" in report and "pocketsphinx" in report
    with zipfile.ZipFile(out / "booking" / "call" / "bundle.zip") as z:       # the repro bundle too
        turns_csv = z.read("turns.csv").decode()
        assert turns_csv.splitlines()[0].endswith("caller_said,agent_said") and "table for two" in turns_csv
        assert json.loads(z.read("report.json"))["transcript"] == booking["transcript"]
    assert TOKEN not in stdout + err + junit.read_text() + report


async def test_pass_rate_decides_over_repeats(gateway_factory, tmp_path: Path) -> None:
    """--repeat 2 --pass-rate 0.5 through the real command: one verdict per script and target,
    counting the calls that passed (the pass-rate arithmetic itself: tests/unit/test_expectations.py);
    --no-transcript leaves the reports without one; a bad pass rate is a usage error."""
    gw = await gateway_factory(tokens=[TOKEN])
    script = tmp_path / "quick.toml"
    # no wait for the greeting: the line talks over it, the agent stops and answers (short calls)
    script.write_text('name = "Quick"\n[target]\nmode = "end-to-end"\n'
                      '[[step]]\nsay = "hello"\n'
                      '[[step]]\nwait_for_agent = { silence_ms = 300, expect = { latency_ms_max = 5000 } }\n')
    code, stdout, err = await run_polyphone(
        "run", str(script), "--url", gw.url, "--no-ice-fetch", "--out", str(tmp_path / "o"), "--repeat", "2",
        "--pass-rate", "0.5", "--no-transcript", "--json", tmp=tmp_path, token=TOKEN, timeout=150)
    assert code == 0, err
    cases = json.loads(stdout)["cases"]
    assert cases == [{"script": "Quick", "target": "default target", "passed": True, "calls": 2,
                      "passed_calls": 2}]
    assert all(r["transcript"] is None for r in json.loads(stdout)["runs"])
    code, _, err = await run_polyphone("run", str(script), "--pass-rate", "1.5", tmp=tmp_path, token=TOKEN)
    assert code == 2 and "--pass-rate must be above 0 and at most 1" in err
