"""A run's expectations checked against what happened (pure logic): runs/expect.py's rules.

`judge` fills each turn's `expectations`, the run's own (the greeting's and the script's
[expect]) and `passed`. Which turn a step's `expect` is about is recorded by the runner as
the call goes (`turn_of_step`): a line the agent could not hear (silent audio) is no turn.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .events import TurnResult
from .expect import TurnOutcome, check, check_script, check_turn
from .script import Script

LEAD_S = 0.3   # a caller utterance's edges as the recogniser dates them vs. the line's loud frames


def words(transcript: list[dict[str, Any]] | None, who: str, start_s: float, end_s: float) -> str | None:
    """`who`'s words starting in [start_s, end_s) (seconds since connected); None: no transcript."""
    if transcript is None:
        return None
    return " ".join(u["text"] for u in transcript
                    if u["who"] == who and start_s * 1000 <= u["start_ms"] < end_s * 1000).strip()


def _with_words(turns: list[TurnResult], transcript: list[dict[str, Any]] | None) -> list[TurnResult]:
    out = []
    for i, t in enumerate(turns):
        following = turns[i + 1].caller_start_s if i + 1 < len(turns) else float("inf")
        out.append(dataclasses.replace(
            t, caller_said=words(transcript, "caller", t.caller_start_s - LEAD_S, t.caller_end_s + LEAD_S),
            agent_said=words(transcript, "agent", t.caller_end_s, following)))
    return out


def _outcome(turn: int, turns: list[TurnResult], transcript: list[dict[str, Any]] | None,
             greeting_ms: float | None) -> TurnOutcome:
    if turn == 0:
        first_line = turns[0].caller_start_s if turns else float("inf")
        return TurnOutcome(greeting_ms, words(transcript, "agent", 0.0, first_line))
    row = turns[turn - 1]
    following = turns[turn].caller_start_s if turn < len(turns) else float("inf")
    return TurnOutcome(row.response_latency_ms, words(transcript, "agent", row.caller_end_s, following),
                       row.barge_in_stop_ms, row.barged_in)


def judge(script: Script, result: Any, turn_of_step: dict[int, int | None], *,
          greeting_ms: float | None, transcript: list[dict[str, Any]] | None,
          heard_threshold: float) -> None:
    """Sets result.turns[*].expectations, result.expectations and result.passed."""
    per_turn: dict[int, list[dict[str, Any]]] = {}
    own: list[dict[str, Any]] = []
    for n, step in enumerate(script.steps, 1):
        if step.expect is None:
            continue
        if n not in turn_of_step:
            own.append(check(f"step {n}", step.describe(), "the call ended before this step", False))
            continue
        turn = turn_of_step[n]
        if turn is None or turn > len(result.turns):
            own.append(check(f"step {n}", step.describe(), "no caller turn was heard before it", False))
            continue
        outcome = _outcome(turn, result.turns, transcript, greeting_ms)
        checks = check_turn(step.expect, outcome, heard_threshold)
        if turn == 0:
            own += [{**c, "what": f"greeting {c['what']}"} for c in checks]
        else:
            per_turn.setdefault(turn, []).extend(checks)
    result.turns = [dataclasses.replace(t, expectations=tuple(per_turn.get(t.turn, ())))
                    for t in _with_words(result.turns, transcript)]
    own += check_script(script.expect, result.timings_ms.get("first_audio"), result.warnings)
    result.expectations = own
    every = own + [c for t in result.turns for c in t.expectations]
    result.passed = bool(result.ok) and all(c["passed"] for c in every)
