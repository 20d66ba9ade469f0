"""One script against several targets, N times each, interleaved; the targets side by side.

Calls go A1 B1 A2 B2 … so drift in the network or the machine hits every target alike.
Per target and turn: response latency median and p90, barge-in stops, failures, and
links to every call's folder. Against the first target, each other target's median
difference per turn is called **beyond noise** only when the two sets of latencies do
not overlap at all and the medians differ by more than three times the larger median
absolute deviation (at least 5 ms) — a robust, assumption-light rule that a handful
of calls can satisfy; otherwise the report says the difference is **within noise**.
"""

from __future__ import annotations

import html
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from .report import latency_svg, page
from .runner import RunResult

MAD_FACTOR = 3.0
MAD_FLOOR_MS = 5.0


@dataclass(frozen=True)
class Comparison:
    turn: int
    target: str
    baseline: str
    difference_ms: float | None
    verdict: str   # "beyond noise" | "within noise" | "not measured"


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")[:60] or "target"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def mad(values: list[float]) -> float:
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values)


def compare(a: list[float], b: list[float]) -> tuple[float | None, str]:
    if not a or not b:
        return None, "not measured"
    diff = statistics.median(b) - statistics.median(a)
    apart = max(a) < min(b) or max(b) < min(a)
    spread = max(mad(a), mad(b), MAD_FLOOR_MS)
    return round(diff, 1), "beyond noise" if apart and abs(diff) > MAD_FACTOR * spread else "within noise"


def latencies(runs: list[RunResult], turn: int) -> list[float]:
    return [r.turns[turn - 1].response_latency_ms for r in runs
            if len(r.turns) >= turn and r.turns[turn - 1].response_latency_ms is not None]


def summarise(labels: list[str], runs: dict[str, list[RunResult]]) -> dict:
    turns = max((len(r.turns) for rs in runs.values() for r in rs), default=0)
    targets = {}
    for label in labels:
        rs = runs[label]
        per_turn = []
        for t in range(1, turns + 1):
            lat = latencies(rs, t)
            stops = [r.turns[t - 1].barge_in_stop_ms for r in rs
                     if len(r.turns) >= t and r.turns[t - 1].barge_in_stop_ms is not None]
            barged = [r.turns[t - 1] for r in rs if len(r.turns) >= t and r.turns[t - 1].barged_in]
            per_turn.append({
                "turn": t, "n": len(lat),
                "median_ms": round(statistics.median(lat), 1) if lat else None,
                "p90_ms": pct(lat, 0.9), "barge_ins": len(barged),
                "stopped": sum(1 for x in barged if x.stopped_after_barge_in),
                "stop_median_ms": round(statistics.median(stops), 1) if stops else None})
        targets[label] = {"calls": len(rs), "failures": sum(1 for r in rs if not r.ok),
                          "turns": per_turn, "folders": [r.out_dir for r in rs]}
    comparisons = [Comparison(t, label, labels[0], *compare(latencies(runs[labels[0]], t),
                                                           latencies(runs[label], t)))
                   for label in labels[1:] for t in range(1, turns + 1)]
    return {"targets": targets, "comparisons": [c.__dict__ for c in comparisons],
            "rule": f"beyond noise: the latencies do not overlap and the medians differ by more than "
                    f"{MAD_FACTOR:g}x the larger median absolute deviation (at least {MAD_FLOOR_MS:g} ms)"}


async def run_interleaved(labels: list[str], repeat: int,
                          one: Callable[[str, int], Awaitable[RunResult]]) -> dict[str, list[RunResult]]:
    runs: dict[str, list[RunResult]] = {label: [] for label in labels}
    for i in range(1, repeat + 1):
        for label in labels:
            runs[label].append(await one(label, i))
    return runs


def summary_html(script: str, labels: list[str], summary: dict, out: Path) -> str:
    chart = latency_svg({label: [t["median_ms"] for t in summary["targets"][label]["turns"]]
                         for label in labels})
    head = "".join(f"<th>{html.escape(label)} median</th><th>p90</th>" for label in labels)
    turns = len(next(iter(summary["targets"].values()))["turns"]) if labels else 0
    rows = ""
    for t in range(turns):
        cells = "".join(f"<td>{summary['targets'][lb]['turns'][t]['median_ms'] or '—'}</td>"
                        f"<td>{summary['targets'][lb]['turns'][t]['p90_ms'] or '—'}</td>" for lb in labels)
        rows += f"<tr><td>{t + 1}</td>{cells}</tr>"
    verdicts = "".join(f"<li>turn {c['turn']}: {html.escape(c['target'])} vs {html.escape(c['baseline'])}: "
                       f"{_signed(c['difference_ms'])} — <b>{c['verdict']}</b></li>"
                       for c in summary["comparisons"])
    links = "".join(f"<li>{html.escape(label)}: " + ", ".join(
        f"<a href=\"{Path(f).relative_to(out)}/report.html\">call {i + 1}</a>"
        for i, f in enumerate(summary["targets"][label]["folders"])) +
        f" — failures {summary['targets'][label]['failures']}</li>" for label in labels)
    return page(f"{script}: A/B", (
        f"<h2>Median response latency per turn (ms)</h2>{chart}"
        f"<table><tr><th>turn</th>{head}</tr>{rows}</table>"
        f"<h2>Differences</h2><ul>{verdicts or '<li>one target only</li>'}</ul>"
        f"<p>Rule: {summary['rule']}.</p><h2>Calls</h2><ul>{links}</ul>"))


def _signed(v: float | None) -> str:
    return "—" if v is None else f"{v:+.0f} ms"


def write_summary(script: str, labels: list[str], runs: dict[str, list[RunResult]], out: Path) -> dict:
    summary = summarise(labels, runs)
    (out / "summary.json").write_text(json.dumps({"script": script, **summary}, indent=1), encoding="utf-8")
    (out / "summary.html").write_text(summary_html(script, labels, summary, out), encoding="utf-8")
    return summary
