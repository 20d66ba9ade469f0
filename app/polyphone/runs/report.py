"""A run's report: report.json for machines, report.html for people, bundle.zip for a bug report.

The HTML is one self-contained file (inline CSS and SVG, no script, nothing fetched).
The bundle holds what an agent's builders need to reproduce what the caller heard:
the stereo recording, the report, the per-second stats, the event log (the engine
never logs tokens; the bundle is still checked for the run's token before it is
written), the turn table as CSV, and the app, OS and library versions.
"""

from __future__ import annotations

import csv
import html
import io
import json
import platform
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from .runner import THRESHOLDS, RunResult

TURN_FIELDS = ("turn", "kind", "caller_start_s", "caller_end_s", "response_latency_ms",
               "agent_speaking_ms", "barged_in", "stopped_after_barge_in", "barge_in_stop_ms")


def facts() -> dict[str, Any]:
    out: dict[str, Any] = {"polyphone": __version__, "python": sys.version.split()[0],
                           "os": platform.platform(), "machine": platform.machine()}
    for name in ("aiortc", "av", "aioice", "websockets", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            out[name] = None
    return out


def turns_csv(result: RunResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(TURN_FIELDS)
    for t in result.turns:
        row = asdict(t)
        w.writerow(["" if row[f] is None else row[f] for f in TURN_FIELDS])
    return buf.getvalue()


def latency_svg(series: dict[str, list[float | None]], width: int = 640, height: int = 220) -> str:
    """Bars per turn (grouped by label when several series are given), in ms."""
    labels = list(series)
    turns = max((len(v) for v in series.values()), default=0)
    values = [v for vs in series.values() for v in vs if v is not None]
    if not turns or not values:
        return "<p>No turn was measured.</p>"
    top = max(values) * 1.15 or 1.0
    pad, base = 40, height - 30
    slot = (width - pad - 10) / turns
    bar = max(4.0, slot * 0.8 / len(labels))
    colours = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="response latency per turn, ms">',
             f'<line x1="{pad}" y1="{base}" x2="{width - 5}" y2="{base}" stroke="#888"/>']
    for frac in (0.5, 1.0):
        y = base - (base - 10) * frac
        parts.append(f'<text x="2" y="{y + 4:.0f}" font-size="10">{top * frac:.0f}</text>')
    for i, label in enumerate(labels):
        for t, v in enumerate(series[label]):
            if v is None:
                continue
            h = (base - 10) * v / top
            x = pad + t * slot + i * bar + slot * 0.1
            parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                         f'fill="{colours[i % len(colours)]}"><title>{html.escape(label)} turn {t + 1}: '
                         f'{v:.0f} ms</title></rect>')
    for t in range(turns):
        parts.append(f'<text x="{pad + t * slot + slot / 2:.0f}" y="{height - 12}" font-size="10" '
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
            "text-align:right}th{background:#f4f4f4}.warn{color:#9c4221}</style>"
            f"<h1>{html.escape(title)}</h1>{body}</html>")


def run_html(result: RunResult) -> str:
    r = result
    status = "ended normally" if r.ok else f"failed: {html.escape((r.error or {}).get('message', ''))}"
    rows = "".join("<tr>" + "".join(f"<td>{_cell(getattr(t, f))}</td>" for f in TURN_FIELDS) + "</tr>"
                   for t in r.turns)
    timings = ", ".join(f"{k} {_cell(v)} ms" for k, v in r.timings_ms.items())
    last = r.stats_series[-1] if r.stats_series else {}
    warnings = "".join(f"<li class=warn>{html.escape(w['kind'])} over {w['threshold']:g} "
                       f"from {w['from_s']:.0f} s to {w['to_s']:.0f} s (worst {w['worst']:.0f})</li>"
                       for w in r.warnings) or "<li>none</li>"
    chart = latency_svg({r.target: [t.response_latency_ms for t in r.turns]})
    return page(f"{r.script} — {r.target}", (
        f"<p>{html.escape(r.started_at)} · {status} · {r.duration_s:.1f} s · session "
        f"{html.escape(r.session_id or '—')} · callSid {html.escape(r.call_sid or '—')}</p>"
        f"<h2>Response latency per turn (ms)</h2>{chart}"
        f"<p>From the end of the caller's speech (its last loud frame going to the encoder) to the "
        f"agent's first loud frame decoded on arrival; no sound device included.</p>"
        f"<h2>Turns</h2><table><tr>{''.join(f'<th>{f}</th>' for f in TURN_FIELDS)}</tr>{rows}</table>"
        f"<h2>Call</h2><p>Set-up: {timings}.</p><p>Network at the end: RTT {_cell(last.get('rtt_ms'))} ms, "
        f"jitter {_cell(last.get('jitter_ms'))} ms, packets lost {_cell(last.get('packets_lost'))}.</p>"
        f"<h2>Quality warnings</h2><p>Thresholds: {', '.join(f'{k} {v:g}' for k, v in THRESHOLDS.items())}"
        f"</p><ul>{warnings}</ul>"
        f"<p>Recording: <a href=\"recording.wav\">recording.wav</a> (caller left, agent right).</p>"))


def _scrub(text: str, token: str | None) -> str:
    """The engine never logs tokens; this makes sure no file of a run can carry one."""
    return text.replace(token, "[token]") if token and len(token) >= 8 else text


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
        paths[name].write_text(_scrub(text, token), encoding="utf-8")
    paths["bundle.zip"] = write_bundle(result, out / "bundle.zip", token)
    return paths


def write_bundle(result: RunResult, dest: Path, token: str | None = None) -> Path:
    entries = {
        "README.txt": ("A Polyphone repro bundle: one scripted call.\n"
                       "recording.wav  stereo, caller left, agent right\n"
                       "report.json    the whole run; report.html the same for people\n"
                       "stats.json     per-second media statistics; signaling.log the event log\n"
                       "turns.csv      per-turn latency; facts.json app, OS and library versions\n"),
        "report.json": json.dumps(result.to_json(), indent=1),
        "report.html": run_html(result),
        "stats.json": json.dumps(result.stats_series, indent=1),
        "signaling.log": "".join(f"{e['t']:9.3f} {e['level']:7} [{e['source']}] {e['text']}\n"
                                 for e in result.log),
        "turns.csv": turns_csv(result),
        "facts.json": json.dumps({**facts(), "sessionId": result.session_id, "callSid": result.call_sid},
                                 indent=1),
    }
    entries = {name: _scrub(text, token) for name, text in entries.items()}
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in entries.items():
            z.writestr(name, text)
        if result.recording and Path(result.recording).is_file():
            z.write(result.recording, "recording.wav")
    return dest
