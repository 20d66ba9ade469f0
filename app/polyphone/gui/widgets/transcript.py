"""The rows of the conversation pane, without Qt: utterances in the order they began.

Captions (`services.app_events.Caption`) arrive per utterance, first as the words so far
(not final), then once more when it is over; the agent's response time per turn
(`TurnLatency`) arrives when its reply starts, usually before the reply's words. Each change
says which row to draw, and whether it is new or moved, so the widget never redraws them all.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

CALLER, AGENT = "caller", "agent"
NAMES = {CALLER: "You", AGENT: "Agent"}
SAME_START_S = 0.3       # a caption starting this close to a row's start is that row again
REPLY_EARLY_S = 1.5      # a reply's words may be dated this much before its latency arrived
REPLY_LATE_S = 6.0       # a latency comes at most this long after its reply began (the caller's
                         # end is known late); an older agent row is not its reply (a greeting)


@dataclass
class Utterance:
    who: str                      # caller | agent
    start: float                  # monotonic seconds (a placeholder: when its latency arrived)
    text: str = ""
    final: bool = False
    latency_ms: float | None = None
    turn: int | None = None
    pending: bool = False         # a latency whose words have not come yet

    def name(self) -> str:
        return NAMES.get(self.who, self.who.title())

    def who_text(self) -> str:
        """"You", "Agent", or "Agent (850 ms)" once its response time is known."""
        return self.name() if self.latency_ms is None else f"{self.name()} ({self.latency_ms:.0f} ms)"


@dataclass(frozen=True)
class Change:
    index: int                    # the row to draw
    inserted: bool = False        # a new row at `index`
    moved_from: int | None = None  # the row was at this index before
    removed: bool = False         # the row at `index` is gone (its words came to nothing)


def clock(seconds: float) -> str:
    """m:ss (minutes unbounded), never negative."""
    s = max(0, int(seconds))
    return f"{s // 60}:{s % 60:02d}"


class Transcript:
    def __init__(self) -> None:
        self.rows: list[Utterance] = []

    def clear(self) -> None:
        self.rows.clear()

    # --- captions ---------------------------------------------------------------------------

    def caption(self, c: Any) -> Change | None:
        """A `Caption`: updates its row (same speaker, same start), fills a placeholder, or adds one;
        None when there is nothing to show (a final caption without words and no row for it)."""
        i = self._same(c.who, c.start)
        if c.final and not c.text.strip():
            if i is None:
                return None
            del self.rows[i]
            return Change(i, removed=True)
        if i is None and c.who == AGENT:
            i = self._placeholder_for(c.start)
        if i is None:
            return Change(self._insert(Utterance(c.who, c.start, c.text, c.final)), inserted=True)
        row = self.rows[i]
        row.text, row.final, row.pending = c.text, c.final, False
        if row.start == c.start:
            return Change(i)
        del self.rows[i]
        row.start = c.start
        return Change(self._insert(row), moved_from=i)

    def _same(self, who: str, start: float) -> int | None:
        for i in range(len(self.rows) - 1, -1, -1):
            row = self.rows[i]
            if row.who == who and not row.pending and abs(row.start - start) <= SAME_START_S:
                return i
        return None

    def _placeholder_for(self, start: float) -> int | None:
        """The earliest waiting latency these words can belong to (they began near or after it)."""
        return next((i for i, row in enumerate(self.rows)
                     if row.pending and start >= row.start - REPLY_EARLY_S), None)

    def _insert(self, row: Utterance) -> int:
        i = bisect.bisect_right([r.start for r in self.rows], row.start)
        self.rows.insert(i, row)
        return i

    # --- response times ----------------------------------------------------------------------

    def latency(self, turn: int, latency_ms: float, now: float) -> Change:
        """The agent's response time for `turn`, arrived at `now`: onto the reply it belongs to,
        or a placeholder row that the reply's words fill in when they come."""
        i = self._reply_for(now)
        if i is None:
            row = Utterance(AGENT, now, latency_ms=latency_ms, turn=turn, pending=True)
            return Change(self._insert(row), inserted=True)
        self.rows[i].latency_ms, self.rows[i].turn = latency_ms, turn
        return Change(i)

    def _reply_for(self, now: float) -> int | None:
        """The agent row without a response time that starts nearest after `now` (its words may
        be dated a little before); else the last such row since the caller last spoke, if it
        began recently (a latency is sent as its reply starts, or soon after)."""
        unmeasured = [i for i, row in enumerate(self.rows) if row.who == AGENT and row.latency_ms is None]
        after = [i for i in unmeasured if self.rows[i].start >= now - REPLY_EARLY_S]
        if after:
            return min(after, key=lambda i: abs(self.rows[i].start - now))
        last_caller = max((i for i, row in enumerate(self.rows) if row.who == CALLER), default=-1)
        since = [i for i in unmeasured if i > last_caller and self.rows[i].start >= now - REPLY_LATE_S]
        return since[-1] if since else None

    # --- words -------------------------------------------------------------------------------

    def said(self, i: int) -> str:
        row = self.rows[i]
        return row.text if row.text else "…"

    def when(self, i: int, t0: float | None) -> str:
        return clock(self.rows[i].start - t0) if t0 is not None else "0:00"

    def spoken(self, i: int, t0: float | None) -> str:
        """What a screen reader says for row `i`: "Agent at 0:12: Sure, for what time?"."""
        row = self.rows[i]
        text = f"{row.name()} at {self.when(i, t0)}: {row.text or '…'}"
        if row.latency_ms is not None:
            text += f" (replied after {row.latency_ms:.0f} ms)"
        return text if row.final or row.pending else text + " (still speaking)"

    def line(self, i: int, t0: float | None) -> str:
        """Row `i` as copied: "0:12  Agent (850 ms): Sure, for what time?"."""
        return f"{self.when(i, t0)}  {self.rows[i].who_text()}: {self.said(i)}"
