"""What one call of a load test tells Locust (polyphone.load.outcome): pure logic, no Locust."""

from __future__ import annotations

from polyphone.load.outcome import Sample, samples
from polyphone.runs.events import TurnResult
from polyphone.runs.runner import RunResult


def result(**fields) -> RunResult:
    base = dict(script="s", target="t", out_dir="", started_at="", ok=True,
                timings_ms={"first_audio": 812.5})
    return RunResult(**{**base, **fields})


def turn(n: int, latency: float | None, *checks: tuple[str, bool]) -> TurnResult:
    return TurnResult(n, "say", 1.0, 2.0, latency, 500.0,
                      expectations=tuple({"what": w, "expected": 1, "actual": 2, "passed": ok}
                                         for w, ok in checks))


def test_a_good_call_is_its_setup_and_one_entry_per_turn() -> None:
    r = result(turns=[turn(1, 640.0, ("heard", True)), turn(2, 910.0)])
    assert samples(r) == [Sample("call", "setup", 812.5), Sample("turn", "turn 1", 640.0),
                          Sample("turn", "turn 2", 910.0)]


def test_failures_are_named_by_kind_with_stable_texts() -> None:
    gateway = result(ok=False, timings_ms={"first_audio": None}, duration_s=0.25,
                     error={"kind": "gateway", "code": "RATE_LIMITED", "message": "slow down, token abc"})
    assert samples(gateway) == [Sample("call", "setup", 250.0, "call failed: RATE_LIMITED")]
    ice = result(ok=False, error={"kind": "ice", "code": "", "message": "no route"}, timings_ms={})
    assert samples(ice)[0].failure == "call failed: ice"        # the gateway's words never go in
    silent = result(timings_ms={"first_audio": None})
    assert samples(silent)[0].failure == "call failed: no audio from the agent"
    unmet = result(expectations=[{"what": "setup_ms", "passed": False},
                                 {"what": "no_warnings", "passed": True}],
                   turns=[turn(1, None), turn(2, 700.0, ("heard", False), ("latency_ms", False))])
    setup, first, second = samples(unmet)
    assert setup == Sample("call", "setup", 812.5, "expectation not met: setup_ms")
    assert first == Sample("turn", "turn 1", 0.0, "timeout: the agent did not answer")
    assert second == Sample("turn", "turn 2", 700.0, "expectation not met: heard, latency_ms")
