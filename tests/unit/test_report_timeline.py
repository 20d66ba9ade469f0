"""report.html's timeline (runs/timeline_svg.py), the latency chart's legend, and the runner's
waveform envelope (runs/envelope.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from polyphone.runs.ab import summary_html
from polyphone.runs.envelope import MAX_BUCKETS, Envelope
from polyphone.runs.events import TurnResult
from polyphone.runs.report import latency_svg, run_html
from polyphone.runs.runner import RunResult
from polyphone.runs.timeline_svg import fit, timeline_svg

NS = "{http://www.w3.org/2000/svg}"


def run(**kw) -> RunResult:
    r = RunResult("Booking", "local", "/tmp/call", "now", ok=True, duration_s=12.0)
    r.turns = [TurnResult(1, "play", 1.0, 3.0, 1100.0, 2000.0),
               TurnResult(2, "barge_in", 6.5, 7.5, 600.0, 1500.0, barged_in=True,
                          stopped_after_barge_in=True, barge_in_stop_ms=420.0)]
    r.transcript = [{"who": "caller", "start_ms": 1000, "end_ms": 3000, "text": "a table for two"},
                    {"who": "agent", "start_ms": 4100, "end_ms": 6900, "text": "you said a table"},
                    {"who": "caller", "start_ms": 6500, "end_ms": 7500, "text": "sorry <script>x</script>"}]
    r.waveform = {"step_s": 0.05, "caller": [0.5 if 20 <= i < 60 else 0.0 for i in range(200)],
                  "agent": [0.3 if 82 <= i < 138 else 0.0 for i in range(200)]}
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(f"{NS}text")]


def own(e: ET.Element) -> str:
    """An element's own words, without its children's (a <title> tooltip)."""
    return (e.text or "") + "".join(c.tail or "" for c in e)


def direct_texts(svg: ET.Element) -> list[str]:
    return [own(t) for t in svg.iter(f"{NS}text")]


def test_the_timeline_draws_both_lanes_words_latency_barge_in_and_a_legend() -> None:
    svg = ET.fromstring(timeline_svg(run()))
    assert svg.tag == f"{NS}svg"
    classes = [e.get("class", "") for e in svg.iter()]
    assert "caller-wave" in classes and "agent-wave" in classes
    assert "lane caller" in classes and "lane agent" in classes
    words = direct_texts(svg)
    assert "a table for two" in words and "you said a table" in words
    assert "sorry <script>x</script>" in words   # the parser unescaped what the SVG escaped
    said = [g for g in svg.iter(f"{NS}g") if g.get("class", "").startswith("said")]
    assert len(said) == 3
    spans = [g for g in svg.iter(f"{NS}g") if g.get("class") == "latency-span"]
    assert len(spans) == 2 and "1100 ms" in texts(spans[0]) and "600 ms" in texts(spans[1])
    band = next(e for e in svg.iter(f"{NS}rect") if e.get("class") == "latency")
    assert float(band.get("width")) > 0
    assert any("barge-in" in texts(g) for g in svg.iter(f"{NS}g") if g.get("class") == "barge-in")
    assert {"Caller", "Agent", "Response latency", "Barge-in"} <= set(direct_texts(svg))
    assert "0 s" in words and "5 s" in words


def test_the_latency_span_runs_from_the_callers_end_to_the_agents_start() -> None:
    svg = ET.fromstring(timeline_svg(run()))
    band = next(e for e in svg.iter(f"{NS}rect") if e.get("class") == "latency")
    axis = {"".join(t.itertext()): float(t.get("x")) for t in svg.iter(f"{NS}text")
            if "".join(t.itertext()) in ("0 s", "1 s", "2 s", "5 s")}
    px_per_s = (axis["5 s"] - axis["0 s"]) / 5
    assert abs(float(band.get("x")) - (axis["0 s"] + 3.0 * px_per_s)) < 0.2
    assert abs(float(band.get("width")) - 1.1 * px_per_s) < 0.2


def test_text_is_escaped() -> None:
    page = run_html(run(script="<b>x</b>", target="t & <i>"))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>x</b>" not in page and "<i>" not in page


def test_long_words_are_cut_with_an_ellipsis_and_kept_whole_in_the_tooltip() -> None:
    long = "word " * 80
    r = run(transcript=[{"who": "agent", "start_ms": 100, "end_ms": 2000, "text": long},
                        {"who": "agent", "start_ms": 1500, "end_ms": 2500, "text": "b"},
                        {"who": "agent", "start_ms": 3000, "end_ms": 3500, "text": "c"}])
    svg = ET.fromstring(timeline_svg(r))
    shown = [w for w in direct_texts(svg) if w.startswith("word")]
    assert len(shown) == 1 and shown[0].endswith("…") and len(shown[0]) < len(long)
    tips = ["".join(t.itertext()) for t in svg.iter(f"{NS}title")]
    assert any(long in tip for tip in tips)
    assert fit("abcdef", 4) == "abc…" and fit("abc", 4) == "abc" and fit("abc", 0) == "a…"


def test_nothing_breaks_without_transcript_waveform_or_turns() -> None:
    for kw in ({"transcript": []}, {"transcript": None}, {"waveform": None}, {"turns": []},
               {"transcript": None, "turns": []}):
        ET.fromstring(timeline_svg(run(**kw)))
        assert "<h2>Timeline</h2>" in run_html(run(**kw))
    nothing = timeline_svg(run(transcript=None, waveform=None, turns=[]))
    assert nothing.startswith("<p>")
    assert "<p>" in run_html(run(transcript=[], waveform=None, turns=[]))


def test_a_long_call_draws_wider_than_the_page_and_scrolls() -> None:
    r = run(waveform={"step_s": 0.05, "caller": [0.1] * 6000, "agent": [0.0] * 6000})   # 5 min
    svg = ET.fromstring(timeline_svg(r))
    assert float(svg.get("width")) >= 300 * 40
    assert '<div class=scroll><svg' in run_html(r)
    assert float(ET.fromstring(timeline_svg(run())).get("width")) == 820   # a short call fits the page


def test_the_latency_chart_has_a_legend_of_its_targets() -> None:
    svg = ET.fromstring(latency_svg({"A & B": [600.0, 700.0], "C": [800.0, None], "D": [None, 500.0]}))
    legend = [t for t in svg.iter(f"{NS}text") if t.get("class") == "legend"]
    assert [own(t) for t in legend] == ["A & B", "C", "D"]
    bars = {r.get("fill") for r in svg.iter(f"{NS}rect") if r.find(f"{NS}title") is not None}
    swatches = [r.get("fill") for r in svg.iter(f"{NS}rect") if r.find(f"{NS}title") is None]
    assert len(set(swatches)) == 3 and set(swatches) == bars


def test_the_ab_summary_shows_each_targets_colour() -> None:
    turn = {"turn": 1, "n": 1, "median_ms": 600.0, "p90_ms": 600.0, "barge_ins": 0, "stopped": 0,
            "stop_median_ms": None}
    summary = {"targets": {lb: {"calls": 1, "failures": 0, "turns": [dict(turn)], "folders": []}
                           for lb in ("prod", "<staging>")},
               "comparisons": [], "rule": "r"}
    page = summary_html("s", ["prod", "<staging>"], summary, Path("/tmp"))
    svg = ET.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])
    legend = [own(t) for t in svg.iter(f"{NS}text") if t.get("class") == "legend"]
    assert legend == ["prod", "<staging>"]
    assert "<staging>" not in page


def test_the_envelope_keeps_the_loudest_peak_per_50_ms() -> None:
    env = Envelope()
    for n in range(500):                      # 10 s of 20 ms chunks, as the runner's WaveChunks
        t = round(n * 0.02, 3)
        env.add(t, caller_peak=(n % 7) / 10, agent_peak=0.9 if n == 251 else 0.0)
    wf = env.to_json()
    assert wf["step_s"] == 0.05 and len(wf["caller"]) == len(wf["agent"]) == 200
    for i in range(200):
        chunks = [n for n in range(500) if int(round(n * 0.02, 3) / 0.05 + 1e-9) == i]
        assert wf["caller"][i] == max((n % 7) / 10 for n in chunks)
    assert wf["agent"][int(251 * 0.02 / 0.05)] == 0.9 and sum(wf["agent"]) == 0.9


def test_the_envelope_is_bounded_and_empty_is_none() -> None:
    assert Envelope().to_json() is None
    env = Envelope(max_buckets=100)
    for n in range(1000):
        env.add(n * 0.02, 0.5, 0.5)
    assert len(env.to_json()["caller"]) == 100      # 5 s kept, the rest dropped
    assert MAX_BUCKETS == 30 * 60 * 20                # 30 minutes of 50 ms buckets
    gap = Envelope()
    gap.add(0.0, 0.2, 0.1)
    gap.add(1.0, 0.4, 0.3)                            # nothing for a second: silence between
    assert gap.to_json()["caller"] == [0.2] + [0.0] * 19 + [0.4]


def test_run_result_carries_the_waveform_into_report_json() -> None:
    assert run().to_json()["waveform"]["step_s"] == 0.05
    assert RunResult("s", "t", "/tmp", "now").to_json()["waveform"] is None
