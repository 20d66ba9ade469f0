"""What a scripted run reports while it runs (for a live view); `t` = seconds since connected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    script_name: str
    target_label: str


@dataclass(frozen=True)
class WaveChunk:
    """Peaks (0..1) of the caller's and the agent's audio over the 20 ms ending at `t`."""

    t: float
    caller_peak: float
    agent_peak: float


@dataclass(frozen=True)
class TurnMark:
    turn: int
    kind: str   # caller_start | caller_end | agent_start | agent_end | barge_in
    t: float


@dataclass(frozen=True)
class TurnResult:
    turn: int
    kind: str                            # play | say | dtmf | barge_in
    caller_start_s: float
    caller_end_s: float
    response_latency_ms: float | None    # caller's end of speech -> agent's first audio
    agent_speaking_ms: float | None
    barged_in: bool = False              # this turn interrupted the agent
    stopped_after_barge_in: bool | None = None
    barge_in_stop_ms: float | None = None  # barge-in start -> the interrupted agent went quiet
    expectations: tuple[dict[str, Any], ...] = ()   # runs/expect.py: {what, expected, actual, passed}
    caller_said: str | None = None       # the transcript's words (None: no transcript)
    agent_said: str | None = None


@dataclass(frozen=True)
class Said:
    """One utterance recognised: who said it, when (seconds since connected), the words."""

    who: str        # caller | agent
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class RunFinished:
    result: Any   # runner.RunResult
