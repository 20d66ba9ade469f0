"""The widgets on their own: what they show for each input, and what they emit."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from polyphone import config
from polyphone.engine.events import CallError, CandidateInfo, ErrorKind, SelectedPair, StatsSample
from polyphone.gui.widgets.call_bar import CallBar
from polyphone.gui.widgets.call_button import CallButton
from polyphone.gui.widgets.call_panel import CallPanel
from polyphone.gui.widgets.connection_panel import ConnectionPanel
from polyphone.gui.widgets.device_panel import DevicePanel
from polyphone.gui.widgets.error_banner import ErrorBanner
from polyphone.gui.widgets.event_log import EventLog
from polyphone.gui.widgets.level_meter import LevelMeter
from polyphone.gui.widgets.sparkline import Sparkline
from polyphone.services import errors
from polyphone.services.log_entry import LogEntry


def test_the_call_button_follows_the_state(qtbot) -> None:
    b = CallButton()
    qtbot.addWidget(b)
    with qtbot.waitSignal(b.call_clicked):
        qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
    for state, text, look in (("CONNECTING", "Hang up", "hangup"), ("CONNECTED", "Hang up", "hangup"),
                              ("ENDING", "Ending…", "busy"), ("FAILED", "Call again", "call")):
        b.set_state(state)
        assert (b.text(), b.property("look")) == (text, look)
        assert b.accessibleName() == text.rstrip("…")
    b.set_state("CONNECTED")
    with qtbot.waitSignal(b.hangup_clicked):
        qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
    b.set_state("ENDING")
    assert not b.isEnabled()


def profiles():
    return [config.Profile(name=config.LOCAL_PROFILE, region=config.LOCAL),
            config.Profile(name="Bookings", variant_id="v0",
                           variants=[config.Variant("Fast", "v1"), config.Variant("Careful", "v2")])]


def test_the_call_bar_calls_the_chosen_profile_and_variant(qtbot) -> None:
    bar = CallBar()
    qtbot.addWidget(bar)
    bar.set_profiles(profiles(), select="Bookings", variant="Careful")
    assert bar.current_profile() == "Bookings" and bar.current_variant() == "Careful"
    assert [bar.variant_box.itemText(i) for i in range(3)] == ["Default (v0)", "Fast (v1)", "Careful (v2)"]
    with qtbot.waitSignal(bar.call_requested) as sig:
        bar.request_call()
    assert sig.args == ["Bookings", "Careful"]
    bar.profile_box.setCurrentIndex(0)
    assert bar.current_variant() == "" and not bar.variant_box.isEnabled()


def test_the_call_bar_locks_the_choice_and_times_the_call(qtbot) -> None:
    bar = CallBar()
    qtbot.addWidget(bar)
    bar.set_profiles(profiles(), select="Bookings")
    bar.set_state("CONNECTING")
    assert not bar.profile_box.isEnabled() and bar.status.text() == "Connecting…"
    assert bar.timer_label.isHidden()
    bar.set_state("CONNECTED")
    assert bar._tick.isActive() and bar.timer_label.text() == "00:00" and not bar.timer_label.isHidden()
    bar.set_state("ENDED", "The agent ended the call.")
    assert bar.reason.text() == "The agent ended the call." and not bar.timer_label.isHidden()
    bar.set_state("STARTING", "calling Bookings")
    bar.set_state("FAILED", "Token rejected")
    assert bar.status.text() == "Call failed" and bar.reason.text() == ""  # the banner explains
    assert bar.timer_label.isHidden()
    assert bar.profile_box.isEnabled() and bar.call_button.text() == "Call again"
    with qtbot.waitSignal(bar.mute_toggled) as sig:
        bar.toggle_mute()
    assert sig.args == [True] and bar.mute_button.accessibleName() == "Unmute microphone"


def test_timer_text(qtbot, monkeypatch) -> None:
    bar = CallBar()
    qtbot.addWidget(bar)
    for ms, text in ((0, "00:00"), (65_000, "01:05"), (3_723_000, "1:02:03")):
        monkeypatch.setattr(bar._elapsed, "elapsed", lambda ms=ms: ms)
        monkeypatch.setattr(bar._elapsed, "isValid", lambda: True)
        bar._show_elapsed()
        assert bar.timer_label.text() == text


def test_meter_and_sparkline_draw(qtbot) -> None:
    m = LevelMeter()
    qtbot.addWidget(m)
    m.set_level(-30.0)
    assert abs(m.fraction() - 0.5) < 1e-6
    m.set_level(-200.0)
    assert m.fraction() == 0.0
    s = Sparkline(points=5, floor_max=10.0)
    qtbot.addWidget(s)
    for v in (1, None, 30, 2, 3, 4):
        s.add(v)
    assert list(s.values) == [None, 30, 2, 3, 4] and s.top() == 30
    for w in (m, s):
        w.resize(120, 30)
        assert not w.grab().isNull()  # paintEvent runs without error
    s.bars = True
    assert not s.grab().isNull()


def pair(local_type="relay") -> SelectedPair:
    return SelectedPair(CandidateInfo(local_type, "udp", "10.0.0.2", 50000),
                        CandidateInfo("host", "udp", "203.0.113.9", 3478))


def test_connection_panel(qtbot) -> None:
    p = ConnectionPanel()
    qtbot.addWidget(p)
    p.set_component("ice-connection", "checking")
    assert p.values["ice-connection"].property("pill") == "wait"
    p.set_component("ice-connection", "connected")
    p.set_component("dtls", "failed")
    assert p.values["ice-connection"].property("pill") == "good"
    assert p.values["dtls"].property("pill") == "bad"
    p.set_pair(pair())
    assert "relayed by TURN" in p.pair_kind.text() and "10.0.0.2:50000" in p.pair_local.text()
    p.set_session("sess-1", "sid-1")
    assert p.session.text() == "sess-1"
    p.reset()
    assert p.values["dtls"].text() == "—" and p.session.text() == "—"


def test_call_panel_shows_interval_loss_and_turns(qtbot) -> None:
    p = CallPanel()
    qtbot.addWidget(p)
    p.add_stats(StatsSample(rtt_ms=21.4, jitter_ms=3.2, packets_received=50, packets_lost=0,
                            send_kbps=97, recv_kbps=96, codec="opus/48000"))
    p.add_stats(StatsSample(rtt_ms=25.0, jitter_ms=4.0, packets_received=95, packets_lost=5,
                            send_kbps=98, recv_kbps=90, codec="opus/48000"))
    assert p.value_labels["rtt"].text() == "25 ms" and p.value_labels["loss"].text() == "10.0 %"
    assert p.codec.text() == "opus/48000" and len(p.plots["rtt"].values) == 2
    p.add_turn(1, 900.0)
    p.add_turn(2, 700.0)
    assert len(p.turn_plot.values) == 2 and "median 900 ms" in p.turn_summary.text()
    p.reset()
    assert not p.turn_plot.values and p.value_labels["rtt"].text() == "—"


def entry(level, source, text) -> LogEntry:
    return LogEntry(time.time(), level, source, text)


def test_event_log_filters_copies_and_hides_tokens(qtbot) -> None:
    log = EventLog()
    qtbot.addWidget(log)
    log.redact.add("s3cret-token-value")
    log.add(entry("debug", "ice", "ICE server stun:x"))
    log.add(entry("info", "signaling", "offer sent with authToken s3cret-token-value"))
    log.add(entry("warning", "audio", "no audio for 3 s"))
    log.add(entry("info", "signaling", 'raw {"authToken": "abc123"} and ?token=xyz'))
    text = log.text.toPlainText()
    assert "ICE server" not in text  # debug hidden at the default level
    assert "s3cret" not in text and "abc123" not in text and "xyz" not in text and "[hidden]" in text
    log.set_min_level("debug")
    assert "ICE server" in log.text.toPlainText()
    log.source_box.setCurrentIndex(log.source_box.findData("audio"))
    assert log.visible_lines() == [log.entries[2].format()]
    log.source_box.setCurrentIndex(0)
    log.search.setText("OFFER")
    assert len(log.visible_lines()) == 1
    log.copy()
    assert "offer sent" in QApplication.clipboard().text()
    log.clear()
    assert log.entries == [] and log.text.toPlainText() == ""


def test_banner_explains_and_offers_the_fix(qtbot) -> None:
    b = ErrorBanner()
    qtbot.addWidget(b)
    assert b.isHidden()  # nothing to say yet
    err = CallError(ErrorKind.GATEWAY, "The gateway rejected the authentication token.",
                    "Open the profile, paste a valid token.", code="UNAUTHORIZED")
    b.show_error(errors.explain(err), "detail words")
    assert b.isVisible()
    assert "UNAUTHORIZED" in b.title.text() and b.action_button.text() == "Open token field"
    with qtbot.waitSignal(b.action_requested) as sig:
        qtbot.mouseClick(b.action_button, Qt.MouseButton.LeftButton)
    assert sig.args == [errors.EDIT_TOKEN]
    qtbot.mouseClick(b.copy_button, Qt.MouseButton.LeftButton)
    assert "detail words" in QApplication.clipboard().text()
    qtbot.mouseClick(b.dismiss_button, Qt.MouseButton.LeftButton)
    assert b.isHidden()
    b.show_notice("The keyring is locked.")
    assert not b.isHidden() and b.property("kind") == "notice" and b.action_button.isHidden()


class Dev:
    def __init__(self, id, name, kind, default=False):
        self.id, self.name, self.kind, self.is_default, self.hostapi = id, name, kind, default, "PulseAudio"


def test_device_panel_lists_selects_and_remembers_a_missing_device(qtbot) -> None:
    p = DevicePanel()
    qtbot.addWidget(p)
    p.set_devices([Dev("pulse:input:vmic", "VirtualMic", "input", True)],
                  [Dev("pulse:output:spk", "VirtualSpeaker", "output", True)],
                  "pulse:input:usb-headset", "")
    assert p.input_box.itemText(0) == "System default"
    assert p.input_box.currentText() == "usb-headset (not connected)"
    assert p.output_box.currentData() == ""
    with qtbot.waitSignal(p.input_selected) as sig:
        p.input_box.setCurrentIndex(1)
        p.input_box.activated.emit(1)
    assert sig.args == ["pulse:input:vmic"]
    with qtbot.waitSignal(p.volume_changed) as sig:
        p.volume.setValue(80)
    assert sig.args == [0.8] and p.volume_label.text() == "80 %"
    with qtbot.waitSignal(p.test_requested) as sig:
        qtbot.mouseClick(p.output_test, Qt.MouseButton.LeftButton)
    assert sig.args == ["output"] and not p.output_test.isEnabled()
    p.show_check_result("output", "VirtualSpeaker: played 1.0 s")
    assert p.output_test.isEnabled() and "played" in p.check_result.text()
    p.set_in_call(True)
    assert not p.input_test.isEnabled()
