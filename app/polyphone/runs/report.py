"""A run's report: report.json for machines, report.html for people, bundle.zip for a bug report.

The HTML is one self-contained file (inline CSS and SVG, no script, nothing fetched).
The bundle holds what an agent's builders need to reproduce what the caller heard:
the stereo recording, the report, the per-second stats, the event log (the engine
never logs tokens; the bundle is still checked for the run's token before it is
written), the turn table as CSV, and the app, OS and library versions.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import repro
from ..engine.quality import THRESHOLDS
from ..repro import table_csv
from .runner import RunResult
from .timeline_svg import legend, timeline_svg

TURN_FIELDS = ("turn", "kind", "caller_start_s", "caller_end_s", "response_latency_ms",
               "agent_speaking_ms", "barged_in", "stopped_after_barge_in", "barge_in_stop_ms",
               "caller_said", "agent_said")
COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280")   # latency_svg, per series


def turns_csv(result: RunResult) -> str:
    return table_csv([asdict(t) for t in result.turns], TURN_FIELDS)


def latency_svg(series: dict[str, list[float | None]], width: int = 640, height: int = 220) -> str:
    """Bars per turn (grouped by label when several series are given), in ms, under a legend
    of each label's colour."""
    labels = list(series)
    turns = max((len(v) for v in series.values()), default=0)
    values = [v for vs in series.values() for v in vs if v is not None]
    if not turns or not values:
        return "<p>No turn was measured.</p>"
    keys, key_h = legend([(COLOURS[i % len(COLOURS)], label, "box") for i, label in enumerate(labels)],
                         40, 4, width)
    top, pad, base = key_h + 14, 40, key_h + height - 30
    peak = max(values) * 1.15 or 1.0
    slot = (width - pad - 10) / turns
    bar = max(4.0, slot * 0.8 / len(labels))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + key_h}" '
             f'font-family="system-ui,sans-serif" role="img" aria-label="response latency per turn, ms">',
             keys, f'<line x1="{pad}" y1="{base}" x2="{width - 5}" y2="{base}" stroke="#888"/>']
    for frac in (0.5, 1.0):
        y = base - (base - top) * frac
        parts.append(f'<text x="2" y="{y + 4:.0f}" font-size="10">{peak * frac:.0f}</text>')
    for i, label in enumerate(labels):
        for t, v in enumerate(series[label]):
            if v is None:
                continue
            h = (base - top) * v / peak
            x = pad + t * slot + i * bar + slot * 0.1
            parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS[i % len(COLOURS)]}"><title>{html.escape(label)} turn {t + 1}: '
                         f'{v:.0f} ms</title></rect>')
    for t in range(turns):
        parts.append(f'<text x="{pad + t * slot + slot / 2:.0f}" y="{base + 18}" font-size="10" '
                     f'text-anchor="middle">turn {t + 1}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.0f}"
    return html.escape(str(v))


def page(title: str, body: str) -> str:
    return ("<!doctype html><html lang=en><meta charset=utf-8><title>" + html.escape(title) + "</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;"
            "text-align:right}th{background:#f4f4f4}.warn{color:#9c4221}.scroll{overflow-x:auto}</style>"
            f"<h1>{html.escape(title)}</h1>{body}</html>")


def expectations_html(r: RunResult) -> str:
    rows = [("call", c) for c in r.expectations] + [(f"turn {t.turn}", c) for t in r.turns
                                                      for c in t.expectations]
    if not rows:
        return "<p>The script sets no expectations.</p>"
    body = "".join(f"<tr><td>{html.escape(where)}</td><td>{html.escape(c['what'])}</td>"
                   f"<td>{html.escape(str(c['expected']))}</td><td>{html.escape(str(c['actual']))}</td>"
                   + ("<td class=ok>passed</td></tr>" if c["passed"] else "<td class=warn>FAILED</td></tr>")
                   for where, c in rows)
    return ("<table><tr><th>where</th><th>what</th><th>expected</th><th>actual</th><th>result</th></tr>"
            f"{body}</table>")


def transcript_html(r: RunResult) -> str:
    if r.transcript is None:
        return "<p>No transcript was made (transcription was off or its recogniser could not load).</p>"
    if not r.transcript:
        return f"<p>Nothing was recognised ({html.escape(r.recognizer or '')}).</p>"
    rows = "".join(f"<tr><td>{u['start_ms'] / 1000:.1f} s</td><td>{html.escape(u['who'])}</td>"
                   f"<td style=text-align:left>{html.escape(u['text'])}</td></tr>" for u in r.transcript)
    return (f"<p>Recognised by {html.escape(r.recognizer or '?')}, offline; times from the call "
            f"connecting.</p><table><tr><th>at</th><th>who</th><th>words</th></tr>{rows}</table>")


def run_html(result: RunResult) -> str:
    r = result
    status = "ended normally" if r.ok else f"failed: {html.escape((r.error or {}).get('message', ''))}"
    if r.ok:
        status += " · expectations met" if r.passed else " · <b class=warn>expectations NOT met</b>"
    rows = "".join("<tr>" + "".join(f"<td>{_cell(getattr(t, f))}</td>" for f in TURN_FIELDS) + "</tr>"
                   for t in r.turns)
    timings = ", ".join(f"{k} {_cell(v)} ms" for k, v in r.timings_ms.items())
    last = r.stats_series[-1] if r.stats_series else {}
    warnings = "".join(f"<li class={'warn' if w['active'] else 'ok'}>{w['t']:.0f} s: "
                       f"{html.escape(w['message'])}</li>" for w in r.warnings) or "<li>none</li>"
    chart = latency_svg({r.target: [t.response_latency_ms for t in r.turns]})
    return page(f"{r.script} — {r.target}", (
        f"<p>{html.escape(r.started_at)} · {status} · {r.duration_s:.1f} s · session "
        f"{html.escape(r.session_id or '—')} · callSid {html.escape(r.call_sid or '—')}</p>"
        f"<h2>Timeline</h2><div class=scroll>{timeline_svg(r)}</div>"
        f"<p>Seconds from the call connecting. The caller's audio above the line, the agent's below "
        f"(the loudest peak per 50 ms); the words as recognised, at their start (hover for all of "
        f"them); shaded, each turn's response latency. A long call scrolls sideways.</p>"
        f"<h2>Response latency per turn (ms)</h2>{chart}"
        f"<p>From the end of the caller's speech (its last loud frame going to the encoder) to the "
        f"agent's first loud frame decoded on arrival; no sound device included.</p>"
        f"<h2>Turns</h2><table><tr>{''.join(f'<th>{f}</th>' for f in TURN_FIELDS)}</tr>{rows}</table>"
        f"<h2>Expectations</h2>{expectations_html(r)}<h2>Transcript</h2>{transcript_html(r)}"
        f"<h2>Call</h2><p>Set-up: {timings}.</p><p>Network at the end: RTT {_cell(last.get('rtt_ms'))} ms, "
        f"jitter {_cell(last.get('jitter_ms'))} ms, packets lost {_cell(last.get('packets_lost'))}.</p>"
        f"<h2>Quality warnings</h2><p>Thresholds: {', '.join(f'{k} {v:g}' for k, v in THRESHOLDS.items())}"
        f"</p><ul>{warnings}</ul>"
        f"<p>Recording: <a href=\"recording.wav\">recording.wav</a> (caller left, agent right).</p>"))


def write_run(result: RunResult, token: str | None = None) -> dict[str, Path]:
    """report.json, report.html and bundle.zip in the run's folder; returns their paths."""
    out = Path(result.out_dir)
    files = {
        "report.json": json.dumps(result.to_json(), indent=1),
        "report.html": run_html(result),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = out / name
        paths[name].write_text(repro.scrub(text, token), encoding="utf-8")
    paths["bundle.zip"] = write_bundle(result, out / "bundle.zip", token)
    return paths


def write_bundle(result: RunResult, dest: Path, token: str | None = None) -> Path:
    return repro.write_bundle(
        dest, report=result.to_json(), stats=result.stats_series, log=result.log,
        turns_csv=turns_csv(result), session_id=result.session_id, call_sid=result.call_sid,
        recording=Path(result.recording) if result.recording else None,
        devices={"input": "the script's WAV files", "output": "none (decoded audio recorded)"},
        extra_files={"report.html": run_html(result)}, token=token)
