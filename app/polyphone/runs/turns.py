"""The turn table of a scripted run, from dated speech edges (pure logic, no I/O).

The caller's turns are exact: the runner knows when the first and the last loud
frame of each WAV went to the encoder. The agent's speech is what a voice-activity
detector found in the received audio, each segment dated from its first loud frame
to the end of its last one. For each caller turn:

- the reply is the first agent segment that starts after the caller's end of speech
  and before the caller's next turn: response latency = its start - the caller's end;
  the agent spoke for that segment's length;
- a barge-in interrupted the agent segment under way when it started: the agent
  stopped if that segment ended within `stop_window_s`, and `barge_in_stop_ms` is
  how long after the barge-in began it went quiet.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import TurnResult

MAX_LATENCY_S = 20.0
STOP_WINDOW_S = 3.0


@dataclass(frozen=True)
class CallerTurn:
    kind: str        # play | barge_in
    start: float
    end: float


Segment = tuple[float, "float | None"]   # agent speech: (start, end or None if still speaking)


def _ms(x: float) -> float:
    return round(1000.0 * x, 1)


def turn_table(caller: list[CallerTurn], agent: list[Segment], *, max_latency_s: float = MAX_LATENCY_S,
               stop_window_s: float = STOP_WINDOW_S) -> list[TurnResult]:
    rows = []
    for i, turn in enumerate(caller):
        next_start = caller[i + 1].start if i + 1 < len(caller) else float("inf")
        reply = next((seg for seg in agent
                      if turn.end <= seg[0] < next_start and seg[0] - turn.end <= max_latency_s), None)
        latency = _ms(reply[0] - turn.end) if reply else None
        speaking = _ms(reply[1] - reply[0]) if reply and reply[1] is not None else None
        barged = stopped = stop_ms = None
        if turn.kind == "barge_in":
            under = next((seg for seg in agent
                          if seg[0] < turn.start and (seg[1] is None or seg[1] > turn.start)), None)
            barged = under is not None
            if under is not None:
                stopped = under[1] is not None and under[1] - turn.start <= stop_window_s
                stop_ms = _ms(under[1] - turn.start) if stopped and under[1] is not None else None
        rows.append(TurnResult(i + 1, turn.kind, round(turn.start, 3), round(turn.end, 3), latency,
                               speaking, bool(barged), stopped, stop_ms))
    return rows
