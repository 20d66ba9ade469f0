"""What one call of a load test tells Locust: its entries in Locust's statistics.

Pure logic, no Locust here (load/user.py fires these as Locust requests), so that it is tested
without a load run.

- `call` / `setup`: the call's set-up, from the websocket opening to the agent's first audio
  (`timings_ms.first_audio`, as the script's `[expect] max_setup_ms` measures it). A call that
  failed is a failure of this entry, named by its kind: the gateway's error code
  (`UNAUTHORIZED`, `RATE_LIMITED`, ...) or `ice`, `timeout`, `network`, `closed`, `protocol`...
  A script-level expectation not met (`max_setup_ms`, `no_warnings`) fails it too.
- `turn` / `turn N`: each scripted turn's response latency (the caller's end of speech to the
  agent's first audio back). A turn the agent never answered fails as `timeout`; a turn whose
  expectation was not met (`heard`, `latency_ms_max`, `stop_ms_max`) fails as `expectation`.

Failure texts are short and stable (Locust groups its failures table by them): the kind, and
what was expected, never a figure of this call, and never the gateway's own words (which
could carry anything). No token can reach them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SETUP = ("call", "setup")


@dataclass(frozen=True)
class Sample:
    request_type: str
    name: str
    response_time_ms: float
    failure: str | None = None      # None: a success


def _failure_kind(error: dict[str, Any] | None) -> str:
    if not error:
        return "error"
    if error.get("kind") == "gateway" and error.get("code"):
        return str(error["code"])
    return str(error.get("kind") or "error")


def _unmet(checks: Any) -> list[str]:
    return [str(c.get("what", "?")) for c in checks or () if not c.get("passed", True)]


def samples(result: Any) -> list[Sample]:
    """The Locust entries of one finished call (a runs.runner.RunResult)."""
    setup_ms = (result.timings_ms or {}).get("first_audio")
    out: list[Sample] = []
    if not result.ok or setup_ms is None:
        kind = _failure_kind(result.error) if not result.ok else "no audio from the agent"
        spent = setup_ms if setup_ms is not None else 1000 * float(result.duration_s or 0.0)
        out.append(Sample(*SETUP, float(spent), f"call failed: {kind}"))
    else:
        unmet = _unmet(result.expectations)
        out.append(Sample(*SETUP, float(setup_ms),
                          f"expectation not met: {', '.join(unmet)}" if unmet else None))
    for turn in result.turns:
        name = f"turn {turn.turn}"
        latency = turn.response_latency_ms
        if latency is None:
            out.append(Sample("turn", name, 0.0, "timeout: the agent did not answer"))
            continue
        unmet = _unmet(turn.expectations)
        out.append(Sample("turn", name, float(latency),
                          f"expectation not met: {', '.join(unmet)}" if unmet else None))
    return out
