"""What a caller script expects of the agent, and whether it got it (pure logic, no I/O).

On a `wait_for_agent` or `barge_in` step:

    expect = { heard = "table for two", latency_ms_max = 1500 }
    expect = { stop_ms_max = 600 }                 # barge_in only

- `heard`: the agent's words on that turn contain the phrase, allowing for recognition
  errors (`speech.score.heard`: the best-matching stretch of the transcript, word by word,
  must reach the recogniser's threshold);
- `latency_ms_max`: the turn's response latency (the caller's end of speech to the agent's
  first audio) is at most this; a turn with no reply fails it;
- `stop_ms_max` (barge_in): the agent went quiet at most this long after the barge-in began.

A `wait_for_agent` expects of the reply to the caller's last line before it (the greeting
when no line came first: its latency is from the call connecting). A `barge_in` expects of
its own turn. Script-level:

    [expect]
    max_setup_ms = 3000     # set-up: the call starting (websocket opening) -> the agent's first audio
    no_warnings = true      # no call-quality warning (loss, jitter, RTT, ...) during the call

Each check is reported as {"what", "expected", "actual", "passed"}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserFacingError

TURN_KEYS = ("heard", "latency_ms_max")
BARGE_IN_KEYS = TURN_KEYS + ("stop_ms_max",)
SCRIPT_KEYS = ("max_setup_ms", "no_warnings")
MAX_MS = 600_000.0


class ExpectError(UserFacingError):
    pass


@dataclass(frozen=True)
class TurnExpect:
    heard: str | None = None
    latency_ms_max: float | None = None
    stop_ms_max: float | None = None


@dataclass(frozen=True)
class ScriptExpect:
    max_setup_ms: float | None = None
    no_warnings: bool = False

    @property
    def empty(self) -> bool:
        return self.max_setup_ms is None and not self.no_warnings


def _ms(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_MS:
        raise ExpectError(f"{where}: expect.{key} must be a number of milliseconds from 1 to {MAX_MS:g}.",
                          "Fix the script and open it again.")
    return float(value)


def _known(raw: Any, keys: tuple[str, ...], where: str, example: str) -> dict:
    if not isinstance(raw, dict):
        raise ExpectError(f"{where}: expect takes a table, e.g. {example}.",
                          "Fix the script and open it again.")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ExpectError(f"{where}: expect does not know {', '.join(unknown)}.", f"Use {', '.join(keys)}.")
    return raw


def _has_words(text: str) -> bool:
    from ..speech.score import normalise

    return bool(normalise(text))


def parse_turn_expect(raw: Any, kind: str, where: str) -> TurnExpect:
    keys = BARGE_IN_KEYS if kind == "barge_in" else TURN_KEYS
    raw = _known(raw, keys, where, 'expect = { heard = "table for two", latency_ms_max = 1500 }')
    heard = raw.get("heard")
    if heard is not None and (not isinstance(heard, str) or not _has_words(heard) or len(heard) > 500):
        raise ExpectError(f"{where}: expect.heard must be the words to listen for (1-500 characters).",
                          "Fix the script and open it again.")
    limits = {key: _ms(raw[key], key, where) for key in ("latency_ms_max", "stop_ms_max") if key in raw}
    return TurnExpect(heard=heard.strip() if heard else None, **limits)


def parse_script_expect(raw: Any) -> ScriptExpect:
    if raw is None:
        return ScriptExpect()
    raw = _known(raw, SCRIPT_KEYS, "[expect]", "[expect] max_setup_ms = 3000")
    no_warnings = raw.get("no_warnings", False)
    if not isinstance(no_warnings, bool):
        raise ExpectError("[expect]: no_warnings must be true or false.", "Fix the script and open it again.")
    setup = raw.get("max_setup_ms")
    return ScriptExpect(_ms(setup, "max_setup_ms", "[expect]") if setup is not None else None, no_warnings)


# --- checking ---------------------------------------------------------------------------


def check(what: str, expected: Any, actual: Any, passed: bool) -> dict[str, Any]:
    return {"what": what, "expected": expected, "actual": actual, "passed": bool(passed)}


def _at_most(what: str, limit: float, actual: float | None, missing: str) -> dict[str, Any]:
    if actual is None:
        return check(what, f"<= {limit:g} ms", missing, False)
    return check(what, f"<= {limit:g} ms", f"{actual:.0f} ms", actual <= limit)


@dataclass(frozen=True)
class TurnOutcome:
    """What happened on one turn, as far as its expectations care."""

    latency_ms: float | None
    agent_text: str | None          # None: no transcript was made
    stop_ms: float | None = None
    barged_in: bool = False


def check_turn(expect: TurnExpect, outcome: TurnOutcome, heard_threshold: float) -> list[dict[str, Any]]:
    from ..speech.score import heard

    out = []
    if expect.heard is not None:
        if outcome.agent_text is None:
            out.append(check("heard", expect.heard, "no transcript (transcription was off or failed)", False))
        else:
            ok, similarity = heard(expect.heard, outcome.agent_text, heard_threshold)
            said = outcome.agent_text.strip() or "(nothing recognised)"
            out.append(check("heard", expect.heard, f"{said} (match {similarity:.2f}, needs "
                                                    f"{heard_threshold:.2f})", ok))
    if expect.latency_ms_max is not None:
        out.append(_at_most("latency_ms", expect.latency_ms_max, outcome.latency_ms, "no reply"))
    if expect.stop_ms_max is not None:
        missing = "the agent did not stop" if outcome.barged_in else "the agent was not speaking"
        out.append(_at_most("barge_in_stop_ms", expect.stop_ms_max, outcome.stop_ms, missing))
    return out


def check_script(expect: ScriptExpect, setup_ms: float | None,
                 warnings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    if expect.max_setup_ms is not None:
        out.append(_at_most("setup_ms", expect.max_setup_ms, setup_ms, "the agent never spoke"))
    if expect.no_warnings:
        raised = [w.get("message", "") for w in warnings if w.get("active")]
        out.append(check("no_warnings", "no call-quality warning",
                         "; ".join(raised[:3]) + (f" (+{len(raised) - 3} more)" if len(raised) > 3 else "")
                         if raised else "none", not raised))
    return out
