"""`polyphone load`: a real Locust master and two worker processes (`--workers 2`), headless, on
loopback, placing real calls to the local gateway's demo agent; the run ends by itself when every
user has made its calls. What it reports goes through Locust's own CSV (and our workers' file)."""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import time
from pathlib import Path

import pytest

from helpers.cli import run_polyphone
from polyphone.localgw.faults import Faults

TOKEN = "load-token-5d1e07c2"
pytestmark = pytest.mark.integration

SCRIPT = """
name = "Load"
[target]
mode = "end-to-end"
[[step]]
wait_for_agent = { silence_ms = 600, timeout_ms = 15000 }
[[step]]
say = "I would like to book a table for two"
[[step]]
wait_for_agent = { expect = { latency_ms_max = 5000 } }
[[step]]
dtmf = "12"
[[step]]
wait_for_agent = { expect = { latency_ms_max = 1 } }
"""


def rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as f:
        return {(r["Type"], r["Name"]) if "Type" in r else (r["Method"], r["Error"]): r
                for r in csv.DictReader(f)}


def everything_written(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.iterdir() if p.is_file())


async def test_scripted_callers_on_two_workers_count_every_turn_and_stop_by_themselves(
        gateway_factory, tmp_path: Path) -> None:
    gw = await gateway_factory(tokens=[TOKEN])
    script = tmp_path / "load.toml"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    code, _, err = await run_polyphone(
        "load", str(script), "--url", gw.url, "--no-ice-fetch", "--users", "2", "--spawn-rate", "2",
        "--iterations", "2", "--workers", "2", "--headless", "--run-time", "120s",
        "--csv", str(out / "run"), "--html", str(out / "report.html"), tmp=tmp_path, token=TOKEN, timeout=150)
    took = time.monotonic() - started
    assert code == 1, err[-3000:]                       # the second turn's expectation always fails
    assert took < 100, f"the run did not stop by itself ({took:.0f} s)"
    stats = rows(out / "run_stats.csv")
    calls = 2 * 2                                       # users × iterations
    assert int(stats[("call", "setup")]["Request Count"]) == calls, stats
    assert int(stats[("call", "setup")]["Failure Count"]) == 0
    assert int(stats[("turn", "turn 1")]["Request Count"]) == calls
    assert int(stats[("turn", "turn 1")]["Failure Count"]) == 0
    assert 100 < float(stats[("turn", "turn 1")]["Median Response Time"]) < 5000
    assert int(stats[("turn", "turn 2")]["Failure Count"]) == calls
    failures = rows(out / "run_failures.csv")
    assert int(failures[("turn", "expectation not met: latency_ms")]["Occurrences"]) == calls
    workers = json.loads((out / "run_workers.json").read_text())
    assert len(workers) == 2 and sum(w["calls"] for w in workers.values()) == calls
    assert all(w["deadlines_met"] for w in workers.values()), workers
    assert "plan: 2 callers" in err and "this machine" in err
    assert TOKEN not in err + everything_written(out)


async def test_a_gateway_error_is_a_failure_named_by_its_code(gateway_factory, tmp_path: Path) -> None:
    """The several-machines form on one: `--master` alone, and `--worker --master-host` apart."""
    gw = await gateway_factory(tokens=[TOKEN], faults=Faults(error_code="AGENT_FAILURE"))
    out = tmp_path / "out"
    out.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    master = asyncio.ensure_future(run_polyphone(
        "load", "--url", gw.url, "--no-ice-fetch", "--users", "2", "--spawn-rate", "2", "--iterations", "1",
        "--duration", "2", "--master", "--master-bind", "127.0.0.1", "--master-port", port, "--workers", "2",
        "--headless", "--run-time", "60s", "--csv", str(out / "run"), tmp=tmp_path, token=TOKEN, timeout=90))
    code, _, worker_err = await run_polyphone("load", "--worker", "--master-host", "127.0.0.1",
                                              "--master-port", port, "--workers", "2",
                                              tmp=tmp_path, token=TOKEN, timeout=90)
    assert code == 0, worker_err[-3000:]                # the workers end with the run
    code, _, err = await master
    assert code == 1, err[-3000:] + worker_err[-2000:]
    failures = rows(out / "run_failures.csv")
    assert int(failures[("call", "call failed: AGENT_FAILURE")]["Occurrences"]) == 2, failures
    assert TOKEN not in err + worker_err + everything_written(out)


async def test_usage_is_checked_before_locust_starts(tmp_path: Path) -> None:
    code, _, err = await run_polyphone("load", "--users", "2", "--headless", "--run-time", "5s",
                                       tmp=tmp_path, token=TOKEN)
    assert code == 2 and "--profile NAME or --url URL" in err
    code, _, err = await run_polyphone("load", "--url", "wss://gateway.example.com/api/v1/webrtc/signal",
                                       "--users", "50", "--headless", "--run-time", "5s",
                                       tmp=tmp_path, token=TOKEN)
    assert code == 2 and "plan: 50 callers" in err and "another machine" in err and "--yes" in err
    code, _, err = await run_polyphone("load", "--url", "ws://127.0.0.1:9/x", "--users", "1", "--headless",
                                       "--run-time", "5s", tmp=tmp_path, token=None)
    assert code == 2 and "POLYPHONE_TOKEN" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "Bad"\n[[step]]\nfly = 3\n')
    code, _, err = await run_polyphone("load", str(bad), "--url", "ws://127.0.0.1:9/x", "--users", "1",
                                       "--headless", "--run-time", "5s", tmp=tmp_path, token=TOKEN)
    assert code == 2 and "step 1: a step is exactly one of" in err   # said once, before any worker
