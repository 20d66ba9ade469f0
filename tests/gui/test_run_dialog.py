"""The scripted-run window: the live timeline, a bad script, and a real run against the demo agent."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor

from helpers.qt_waits import until
from polyphone import config
from polyphone.gui.dialogs.run_dialog import RunDialog, _verdict
from polyphone.gui.widgets.run_timeline import AGENT, CALLER, RunTimeline
from polyphone.paths import resource
from polyphone.runs.events import Said, TurnMark, TurnResult, WaveChunk
from polyphone.runs.runner import RunResult


def colour_count(image, colour: QColor, rows: range) -> int:
    return sum(1 for y in rows for x in range(0, image.width(), 2)
               if QColor(image.pixel(x, y)).rgb() == colour.rgb())


def test_the_timeline_draws_both_waveforms_marks_and_the_latency(qtbot) -> None:
    timeline = RunTimeline()
    qtbot.addWidget(timeline)
    timeline.resize(600, 200)
    for i in range(500):   # 10 s: the caller speaks 1-3 s, the agent 4-7 s
        t = i * 0.02
        timeline.add(WaveChunk(t, 0.8 if 1 < t < 3 else 0.0, 0.6 if 4 < t < 7 else 0.0))
    timeline.add(TurnMark(1, "caller_end", 3.0))
    timeline.add(TurnResult(1, "play", 1.0, 3.0, 1000.0, 3000.0))
    image = timeline.grab().toImage()
    lane = (200 - 16) // 2
    assert colour_count(image, CALLER, range(5, lane)) > 50
    assert colour_count(image, AGENT, range(lane + 10, 2 * lane)) > 50
    assert colour_count(image, AGENT, range(5, lane)) == 0        # each lane holds one side
    x_span = int(4 + 592 * 3.5 / 20)                                # inside the shaded 3-4 s gap
    shaded = QColor(image.pixel(x_span, lane + 8 + lane // 2))
    assert shaded.red() > shaded.blue()                             # the orange latency span


def test_the_timeline_writes_the_words_and_the_dialog_the_verdict(qtbot) -> None:
    timeline = RunTimeline()
    qtbot.addWidget(timeline)
    timeline.resize(600, 200)
    timeline.add(Said("caller", 1.0, 2.5, "a table for two please"))
    timeline.add(Said("agent", 3.0, 5.0, "a table for two " * 20))   # elided to the width
    blank = RunTimeline()
    qtbot.addWidget(blank)
    blank.resize(600, 200)
    assert timeline.grab().toImage() != blank.grab().toImage() and len(timeline.said) == 2
    r = RunResult("s", "t", "/tmp", "now", ok=True)
    assert _verdict(r) == "The run ended normally."
    r.expectations = [{"what": "setup_ms", "expected": "<= 1 ms", "actual": "9 ms", "passed": False},
                      {"what": "no_warnings", "expected": "", "actual": "none", "passed": True}]
    assert "1 of 2 expectations were not met" in _verdict(r)
    r.expectations[0]["passed"] = True
    assert _verdict(r).endswith("every expectation was met.")


def test_a_bad_script_is_refused_with_words(make_bridge, qtbot, tmp_path) -> None:
    dialog = RunDialog(make_bridge(), lambda: (config.LOCAL_PROFILE, ""))
    qtbot.addWidget(dialog)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\nplay = "nowhere.wav"\n')
    assert not dialog.open_script(str(bad))
    assert "step 1: there is no WAV file 'nowhere.wav'" in dialog.status.text()
    assert not dialog.run_button.isEnabled()


def test_a_script_runs_against_the_demo_agent_with_live_turns(make_bridge, qloop, qtbot) -> None:
    bridge = make_bridge(profiles=[config.Profile(name=config.LOCAL_PROFILE, region=config.LOCAL,
                                                  fetch_ice_servers=False)])
    dialog = RunDialog(bridge, lambda: (config.LOCAL_PROFILE, ""))
    qtbot.addWidget(dialog)
    assert dialog.open_script(str(resource("scripts/barge_in.toml")))
    assert dialog.steps.count() == 5 and dialog.run_button.isEnabled()

    async def scenario():
        dialog.run()
        await until(lambda: bridge.busy, timeout=5)
        assert dialog.stop_button.isEnabled() and not dialog.run_button.isEnabled()
        await until(lambda: dialog.folder is not None, timeout=60)

    qloop.run(scenario(), timeout=90)
    assert dialog.table.rowCount() == 2, dialog.status.text()
    assert dialog.table.item(1, 1).text() == "barge-in" and dialog.table.item(1, 4).text().endswith("ms")
    assert len(dialog.timeline.chunks) > 300 and dialog.timeline.turns
    assert {s.who for s in dialog.timeline.said} == {"caller", "agent"}   # the words, live
    assert (Path(dialog.folder) / "report.html").is_file() and (Path(dialog.folder) / "bundle.zip").is_file()
    assert "ended normally" in dialog.status.text()
    assert dialog.report_button.isEnabled() and dialog.run_button.isEnabled()


def test_a_quality_warning_shows_in_the_banner_and_goes_when_it_recovers(make_window) -> None:
    from polyphone.engine.events import QualityWarning
    window = make_window()
    window.bridge.quality_warning.emit(QualityWarning("rtt", True, 450, 400, "The network is slow."))
    assert window.banner.isVisible() and window.banner.what.text() == "The network is slow."
    window.bridge.quality_warning.emit(QualityWarning("rtt", False, 50, 400, "recovered"))
    assert not window.banner.isVisible()
