"""A run on one timeline, for report.html: an inline SVG (no script, nothing fetched).

The caller's waveform envelope (`RunResult.waveform`) is drawn above the centre line
and the agent's below it, both scaled to the loudest peak of either. Each recognised
utterance's words sit at its start time in its side's text rows (two rows a side, so
neighbours rarely collide), cut with an ellipsis to the room before the next one in
the row, a bar under them for its length, the full words in a tooltip. Each turn's
response latency is a shaded span from the caller's end of speech to the agent's
first audio, labelled in ms; each barge-in is a red dashed line. A time axis in
seconds and a legend. Colours are the live timeline's (gui/widgets/run_timeline.py).

Width: `PX_PER_S` pixels a second, at least `MIN_WIDTH`: a call longer than about
20 s draws wider than the page and report.html puts it in a box that scrolls
sideways, so the words stay legible however long the call.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .events import TurnResult
    from .runner import RunResult

CALLER, AGENT, LATENCY, LATENCY_TEXT, BARGE = "#2b6cb0", "#2f855a", "#ed8936", "#9c4221", "#c53030"
PX_PER_S = 40.0
MIN_WIDTH = 820          # fits report.html's 60em page
MARGIN = 14
CHAR_PX = 6.2          # a character of 11 px sans-serif, on average
LANE_H = 56
TOP = 74               # the caller's lane: TOP..MID; the agent's: MID..BOTTOM
MID = TOP + LANE_H
BOTTOM = MID + LANE_H
ROWS = {"caller": (TOP - 30, TOP - 14), "agent": (BOTTOM + 16, BOTTOM + 32)}
AXIS = BOTTOM + 44
HEIGHT = AXIS + 20
TICKS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
HALO = 'stroke="#fff" stroke-width="3" paint-order="stroke"'

X = Callable[[float], float]


def esc(text: Any) -> str:
    return html.escape(str(text))


def fit(text: str, chars: int) -> str:
    """`text` cut to `chars` characters (at least one, and an ellipsis) when longer."""
    return text if len(text) <= chars else text[:max(1, chars - 1)].rstrip() + "…"


def legend(items: list[tuple[str, str, str]], x: float, y: float, width: float) -> tuple[str, float]:
    """Swatches and labels, left to right, wrapping at `width`; items are (colour, label, style),
    style box | band | dash. Returns the SVG and the height it takes."""
    parts, x0, row = [], x, 0
    for colour, label, style in items:
        shown = fit(label, 40)
        room = 20 + len(shown) * CHAR_PX + 14
        if x > x0 and x + room > width:
            x, row = x0, row + 1
        top = y + row * 18
        if style == "dash":
            parts.append(f'<line x1="{x:.0f}" y1="{top + 6}" x2="{x + 14:.0f}" y2="{top + 6}" '
                         f'stroke="{colour}" stroke-width="2" stroke-dasharray="4 2"/>')
        else:
            opacity = ' fill-opacity="0.45"' if style == "band" else ""
            parts.append(f'<rect x="{x:.0f}" y="{top}" width="14" height="12" fill="{colour}"{opacity}/>')
        parts.append(f'<text x="{x + 20:.0f}" y="{top + 10}" font-size="11" class="legend">'
                     f'<title>{esc(label)}</title>{esc(shown)}</text>')
        x += room
    return "".join(parts), (row + 1) * 18


def end_s(r: RunResult) -> float:
    """Where the drawing ends, in seconds since connected: the last thing known to happen, or the
    end of the last words (up to 40 characters of them)."""
    ends = [0.0]
    if r.waveform:
        ends.append(len(r.waveform["caller"]) * r.waveform["step_s"])
    ends += [max(u["end_ms"] / 1000, u["start_ms"] / 1000 + min(len(u["text"]), 40) * CHAR_PX / PX_PER_S)
             for u in r.transcript or []]   # room for the words of the last
    ends += [t.caller_end_s + ((t.response_latency_ms or 0) + (t.agent_speaking_ms or 0)) / 1000
             for t in r.turns]
    return max(ends)


def axis(x: X, span_s: float, px_per_s: float) -> str:
    tick = next((s for s in TICKS_S if s * px_per_s >= 60), TICKS_S[-1])
    parts = [f'<line x1="{x(0):.1f}" y1="{AXIS}" x2="{x(span_s):.1f}" y2="{AXIS}" stroke="#888"/>',
             f'<line x1="{x(0):.1f}" y1="{MID}" x2="{x(span_s):.1f}" y2="{MID}" stroke="#999" '
             f'stroke-width="0.5"/>']
    for n in range(int(span_s // tick) + 1):
        at = x(n * tick)
        parts.append(f'<line x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{AXIS + 4}" stroke="#ddd"/>'
                     f'<text x="{at:.1f}" y="{AXIS + 15}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{n * tick} s</text>')
    return "".join(parts)


def wave(r: RunResult, x: X) -> str:
    """Both envelopes as filled outlines: the caller's rising from the centre, the agent's falling."""
    if not r.waveform or not r.waveform["caller"]:
        return ""
    step = r.waveform["step_s"]
    loud = max(max(r.waveform["caller"]), max(r.waveform["agent"]), 0.05)
    parts = []
    for who, colour, sign in (("caller", CALLER, -1), ("agent", AGENT, 1)):
        peaks = r.waveform[who]
        points = " ".join(f"{x((i + 0.5) * step):.1f},{MID + sign * (LANE_H - 4) * p / loud:.1f}"
                          for i, p in enumerate(peaks))
        parts.append(f'<path class="{who}-wave" d="M{x(0):.1f},{MID} L{points} '
                     f'{x(len(peaks) * step):.1f},{MID} Z" fill="{colour}" fill-opacity="0.75" '
                     f'stroke="{colour}" stroke-width="0.6"/>')
    return "".join(parts)


def latency_spans(turns: list[TurnResult], x: X) -> tuple[str, str]:
    """Each measured turn's span (drawn under the waveforms) and its label (drawn over them)."""
    bands, labels = [], []
    for t in turns:
        if t.response_latency_ms is None:
            continue
        x0, x1 = x(t.caller_end_s), x(t.caller_end_s + t.response_latency_ms / 1000)
        ms = f"{t.response_latency_ms:.0f} ms"
        tip = (f"<title>turn {t.turn}: response latency {ms}, from the caller's end of speech "
               f"({t.caller_end_s:.2f} s) to the agent's first audio</title>")
        bands.append(f'<rect class="latency" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{2 * LANE_H}" fill="{LATENCY}" fill-opacity="0.3">{tip}</rect>')
        labels.append(f'<g class="latency-span">{tip}<line x1="{x0:.1f}" y1="{MID}" x2="{x1:.1f}" '
                      f'y2="{MID}" stroke="{LATENCY_TEXT}" stroke-width="2"/>'
                      f'<line x1="{x0:.1f}" y1="{MID - 5}" x2="{x0:.1f}" y2="{MID + 5}" '
                      f'stroke="{LATENCY_TEXT}"/><line x1="{x1:.1f}" y1="{MID - 5}" x2="{x1:.1f}" '
                      f'y2="{MID + 5}" stroke="{LATENCY_TEXT}"/><text x="{(x0 + x1) / 2:.1f}" '
                      f'y="{MID - 8}" font-size="11" font-weight="bold" text-anchor="middle" '
                      f'fill="{LATENCY_TEXT}" {HALO}>{ms}</text></g>')
    return "".join(bands), "".join(labels)


def barge_ins(turns: list[TurnResult], x: X) -> str:
    parts = []
    for t in turns:
        if t.kind != "barge_in":
            continue
        if not t.barged_in:
            outcome, short = "the agent was not speaking", "agent silent"
        elif t.barge_in_stop_ms is not None:
            outcome, short = f"the agent stopped after {t.barge_in_stop_ms:.0f} ms", \
                f"stopped in {t.barge_in_stop_ms:.0f} ms"
        else:
            outcome, short = "the agent did not stop", "did not stop"
        at = x(t.caller_start_s)
        parts.append(f'<g class="barge-in"><title>turn {t.turn}: the caller barged in at '
                     f'{t.caller_start_s:.2f} s; {outcome}</title><line x1="{at:.1f}" y1="{TOP - 4}" '
                     f'x2="{at:.1f}" y2="{BOTTOM}" stroke="{BARGE}" stroke-width="2" '
                     f'stroke-dasharray="5 3"/><text x="{at + 4:.1f}" y="{TOP + 10}" font-size="11" '
                     f'fill="{BARGE}" {HALO}>barge-in</text><text x="{at + 4:.1f}" y="{BOTTOM - 4}" '
                     f'font-size="10" fill="{BARGE}" {HALO}>{short}</text></g>')
    return "".join(parts)


def utterances(transcript: list[dict[str, Any]] | None, x: X, right: float) -> str:
    parts = []
    for who, colour in (("caller", CALLER), ("agent", AGENT)):
        said = sorted((u for u in transcript or [] if u.get("who") == who), key=lambda u: u["start_ms"])
        for i, u in enumerate(said):
            x0, x1 = x(u["start_ms"] / 1000), x(u["end_ms"] / 1000)
            room = (x(said[i + 2]["start_ms"] / 1000) if i + 2 < len(said) else right) - x0 - 6
            y = ROWS[who][i % 2]
            parts.append(f'<g class="said {who}"><title>{who} {u["start_ms"] / 1000:.1f}–'
                         f'{u["end_ms"] / 1000:.1f} s: {esc(u["text"])}</title>'
                         f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="2" '
                         f'fill="{colour}" fill-opacity="0.5"/><text x="{x0:.1f}" y="{y}" '
                         f'font-size="11" fill="{colour}">{esc(fit(u["text"], int(room / CHAR_PX)))}'
                         f'</text></g>')
    return "".join(parts)


def timeline_svg(r: RunResult) -> str:
    """The whole run on one time axis (see the module's docstring)."""
    span = end_s(r)
    if span <= 0 and not r.transcript:
        return "<p>Nothing to draw: no audio, turn or words were recorded.</p>"
    span = math.ceil(span + 0.5)
    px_per_s = max(PX_PER_S, (MIN_WIDTH - 2 * MARGIN) / span)
    width = round(2 * MARGIN + span * px_per_s)

    def x(t: float) -> float:
        return MARGIN + max(0.0, t) * px_per_s

    keys, _ = legend([(CALLER, "Caller", "box"), (AGENT, "Agent", "box"),
                      (LATENCY, "Response latency", "band"), (BARGE, "Barge-in", "dash")], MARGIN, 4, width)
    bands, labels = latency_spans(r.turns, x)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
            f'font-family="system-ui,sans-serif" role="img" aria-label="the call on one timeline: '
            f'caller above, agent below, response latencies, barge-ins">{keys}'
            f'<rect class="lane caller" x="{x(0):.1f}" y="{TOP}" width="{span * px_per_s:.1f}" '
            f'height="{LANE_H}" fill="{CALLER}" fill-opacity="0.05"/>'
            f'<rect class="lane agent" x="{x(0):.1f}" y="{MID}" width="{span * px_per_s:.1f}" '
            f'height="{LANE_H}" fill="{AGENT}" fill-opacity="0.05"/>'
            f'{axis(x, span, px_per_s)}{bands}{wave(r, x)}{barge_ins(r.turns, x)}{labels}'
            f'{utterances(r.transcript, x, width - MARGIN)}</svg>')
