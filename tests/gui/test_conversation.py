"""The conversation pane and the keypad, driven through a real bridge and window: the phone's
events go into the bridge's listener, as a call would deliver them."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QApplication

from helpers.qt_waits import until
from polyphone import config
from polyphone.engine.events import AudioLevels, TurnLatency
from polyphone.gui.main_window import FRAME, fitting_size
from polyphone.gui.widgets.conversation import ConversationPane
from polyphone.services import app_events as ev

ENGINE = "pocketsphinx (offline, lower accuracy)"


def connected(w):
    """The window as in a call that just connected; returns (the phone's listener, t0)."""
    send = w.bridge.phone._listener
    send(ev.PhoneState("STARTING", "IDLE"))
    send(ev.PhoneState("CONNECTED", "NEGOTIATING"))
    assert w.conversation.t0 is not None
    return send, w.conversation.t0


def texts(pane: ConversationPane) -> list[tuple[str, str, str]]:
    return [pane.row_texts(i) for i in range(pane.rows.rowCount())]


def test_caller_and_agent_rows_in_order_with_times(make_window) -> None:
    w = make_window()
    send, t0 = connected(w)
    pane = w.conversation
    send(ev.Caption("agent", t0 + 0.5, t0 + 3.0, "Hello, how can I help?"))
    send(ev.Caption("agent", t0 + 72.0, t0 + 74.0, "Anything else?"))
    send(ev.Caption("caller", t0 + 4.2, t0 + 6.0, "A table for two, please."))   # recognised later
    assert texts(pane) == [("0:00", "Agent", "Hello, how can I help?"),
                           ("0:04", "You", "A table for two, please."),
                           ("1:12", "Agent", "Anything else?")]
    assert pane.accessible_text(1) == "You at 0:04: A table for two, please."
    assert pane.accessible_text(2) == "Agent at 1:12: Anything else?"
    send(ev.PhoneState("STARTING", "ENDED"))   # a new call starts empty
    assert pane.rows.rowCount() == 0 and pane.t0 is None


def test_a_partial_caption_is_updated_in_place_then_finalised(make_window) -> None:
    w = make_window()
    send, t0 = connected(w)
    pane = w.conversation
    send(ev.Caption("caller", t0 + 2.0, t0 + 2.6, "I'd like", final=False))
    assert pane.rows.item(0, 2).font().italic()
    assert pane.accessible_text(0).endswith("(still speaking)")
    send(ev.Caption("caller", t0 + 2.2, t0 + 3.4, "I'd like to book", final=False))
    send(ev.Caption("agent", t0 + 2.15, t0 + 2.5, "Mm-hm"))    # the other side: its own row
    send(ev.Caption("caller", t0 + 2.1, t0 + 4.0, "I'd like to book a table"))
    assert texts(pane) == [("0:02", "You", "I'd like to book a table"), ("0:02", "Agent", "Mm-hm")]
    assert not pane.rows.item(0, 2).font().italic()
    assert pane.accessible_text(0) == "You at 0:02: I'd like to book a table"
    send(ev.Caption("caller", t0 + 8.0, t0 + 9.0, "Thanks"))   # a later start: a new row
    assert pane.rows.rowCount() == 3
    send(ev.Caption("agent", t0 + 9.5, t0 + 9.8, "Uh", final=False))
    send(ev.Caption("agent", t0 + 9.5, t0 + 9.9, "", final=True))   # it came to nothing
    send(ev.Caption("agent", t0 + 11.0, t0 + 11.5, " "))            # nor did this
    assert [row[2] for row in texts(pane)] == ["I'd like to book a table", "Mm-hm", "Thanks"]


def test_a_latency_goes_onto_the_agent_reply_it_measured(make_window) -> None:
    w = make_window()
    send, t0 = connected(w)
    pane = w.conversation
    send(ev.Caption("agent", t0 + 0.5, t0 + 3.0, "Hello."))
    send(ev.Caption("caller", t0 + 4.0, t0 + 5.0, "Hi."))
    pane.add_latency(1, 842.0, now=t0 + 5.9)              # before the reply's words
    assert texts(pane)[-1] == ("0:05", "Agent (842 ms)", "…")
    send(ev.Caption("agent", t0 + 5.85, t0 + 6.5, "How can", final=False))
    send(ev.Caption("agent", t0 + 5.85, t0 + 8.0, "How can I help?"))
    assert texts(pane) == [("0:00", "Agent", "Hello."), ("0:04", "You", "Hi."),
                           ("0:05", "Agent (842 ms)", "How can I help?")]
    assert pane.accessible_text(2) == "Agent at 0:05: How can I help? (replied after 842 ms)"
    send(ev.Caption("caller", t0 + 10.0, t0 + 11.0, "Seven."))
    send(ev.Caption("agent", t0 + 12.0, t0 + 14.0, "Done."))   # the words came first
    pane.add_latency(2, 640.0, now=t0 + 12.3)
    assert texts(pane)[-1] == ("0:12", "Agent (640 ms)", "Done.")
    send(ev.Caption("agent", t0 + 15.0, t0 + 16.0, "Bye."))
    pane.add_latency(3, 900.0, now=t0 + 19.0)            # late: the last reply without one
    assert texts(pane)[-1] == ("0:15", "Agent (900 ms)", "Bye.")
    assert [r.latency_ms for r in pane.transcript.rows if r.who == "agent"] == [None, 842.0, 640.0, 900.0]


def test_a_latency_is_not_put_on_the_greeting(make_window) -> None:
    """The caller's words may not be recognised (or not yet): the agent's greeting, long before
    the latency came, is not the reply it measured."""
    w = make_window()
    send, t0 = connected(w)
    pane = w.conversation
    send(ev.Caption("agent", t0 + 0.2, t0 + 4.0, "Hello, this is the demo agent."))
    pane.add_latency(1, 1126.0, now=t0 + 9.0)
    assert texts(pane) == [("0:00", "Agent", "Hello, this is the demo agent."),
                           ("0:09", "Agent (1126 ms)", "…")]
    send(ev.Caption("agent", t0 + 8.9, t0 + 11.0, "I heard you."))
    assert texts(pane)[-1] == ("0:08", "Agent (1126 ms)", "I heard you.") and pane.rows.rowCount() == 2


def test_a_turn_latency_from_the_phone_reaches_the_pane_and_the_quality_panel(make_window) -> None:
    w = make_window()
    send, _t0 = connected(w)
    send(TurnLatency(1, 733.0))
    assert texts(w.conversation) == [("0:00", "Agent (733 ms)", "…")]
    assert "last 733 ms" in w.call_panel.turn_summary.text() and len(w.call_panel.turn_plot.values) == 1


def test_the_agent_speaking_indicator(make_window) -> None:
    w = make_window()
    send, _t0 = connected(w)
    pane = w.conversation
    assert not pane.agent_speaking
    send(AudioLevels(-40.0, -18.0, False, True))
    assert pane.agent_speaking and pane.speaking.isVisible() and "Agent speaking" in pane.speaking.text()
    send(AudioLevels(-40.0, -60.0, True, False))
    assert not pane.agent_speaking and pane.speaking.isHidden()
    send(AudioLevels(-40.0, -18.0, False, True))
    send(ev.PhoneState("ENDED", "ENDING"))
    assert not pane.agent_speaking


def test_the_captions_switch_is_saved_and_forwarded(make_window, qloop, monkeypatch) -> None:
    w = make_window()
    calls: list[bool] = []

    async def set_captions(on: bool) -> None:
        calls.append(on)

    monkeypatch.setattr(w.bridge.phone, "set_captions", set_captions)
    pane = w.conversation
    assert pane.captions.isChecked() and pane.captions.accessibleName() == "Captions"
    pane.captions.click()
    qloop.run(until(lambda: calls))
    assert calls == [False] and w.settings.captions is False
    assert config.SettingsStore(w.settings_store.path).load().captions is False
    pane.captions.click()
    qloop.run(until(lambda: len(calls) == 2))
    assert calls == [False, True] and config.SettingsStore(w.settings_store.path).load().captions


def test_the_captions_engine_and_its_problem_show(make_window) -> None:
    w = make_window()
    send, _t0 = connected(w)
    pane = w.conversation
    assert pane.engine.isHidden() and pane.problem.isHidden()
    send(ev.CaptionsStatus(ENGINE))
    assert ENGINE in pane.engine.text() and pane.engine.isVisible() and pane.problem.isHidden()
    send(ev.CaptionsStatus("", "The recogniser could not load: install pocketsphinx."))
    assert pane.engine.isHidden() and pane.problem.isVisible()
    assert "could not load" in pane.problem.text()


def test_the_window_starts_with_the_captions_setting(make_bridge, tmp_path) -> None:
    from polyphone.gui.main_window import MainWindow
    bridge = make_bridge()
    bridge.settings.captions = False
    w = MainWindow(bridge, config.SettingsStore(tmp_path / "config" / "settings.toml"))
    assert not w.conversation.captions.isChecked()
    assert "Captions are off" in w.conversation.rows.empty_text
    w.deleteLater()


def test_the_keypad_sends_digits_only_during_a_call(make_window, qloop, qtbot, monkeypatch) -> None:
    w = make_window()
    sent: list[str] = []

    def send_dtmf(digits: str) -> bool:
        sent.append(digits)
        return True

    monkeypatch.setattr(w.bridge.phone, "send_dtmf", send_dtmf)
    button = w.call_bar.keypad_button
    assert button.accessibleName() == "Keypad" and not button.isEnabled()
    send, _t0 = connected(w)
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    keypad = button.keypad
    assert keypad.isVisible() and keypad.accessibleName() == "Keypad"
    assert [keypad.keys[k].text() for k in "123456789*0#"] == list("123456789*0#")
    assert keypad.keys["5"].accessibleName() == "Key 5"
    qtbot.mouseClick(keypad.keys["5"], Qt.MouseButton.LeftButton)
    qtbot.keyClick(keypad, "#")
    qtbot.keyClick(keypad.keys["1"], "0")      # typed while a key has the focus
    qtbot.keyClick(keypad, "a")                # not a key: ignored
    qloop.run(until(lambda: len(sent) == 3))
    assert sent == ["5", "#", "0"] and keypad.sent.text() == "5#0"
    send(ev.PhoneState("ENDING", "CONNECTED"))
    assert not button.isEnabled() and not keypad.isVisible()


def test_a_key_without_a_call_to_take_it_says_so_in_the_log(make_window, qloop) -> None:
    w = make_window()
    connected(w)      # as the window sees it; the real phone has no call
    w.call_bar.keypad_button.keypad.press("9")
    qloop.run(until(lambda: "Keypad tone not sent: no call" in w.event_log.text.toPlainText()))
    assert "'9'" not in w.event_log.text.toPlainText()      # which key is not logged


def test_rows_copy_as_text_and_follow_the_newest_unless_scrolled_up(qtbot) -> None:
    pane = ConversationPane()
    qtbot.addWidget(pane)
    pane.resize(420, 320)
    pane.show()
    pane.call_started(100.0)
    for i in range(30):
        who = "caller" if i % 2 else "agent"
        pane.add_caption(ev.Caption(who, 100.0 + 3 * i, 101.0 + 3 * i, f"line {i}"))
    bar = pane.rows.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    bar.setValue(0)                            # the person scrolls up to read
    pane.add_caption(ev.Caption("agent", 200.0, 201.0, "more"))
    QApplication.processEvents()
    assert bar.value() == 0
    bar.setValue(bar.maximum())                # and back down: following again
    pane.add_caption(ev.Caption("caller", 203.0, 204.0, "and more"))
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())
    pane.rows.selectRow(0)
    pane.rows.setFocus()
    qtbot.keyClick(pane.rows, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "0:00  Agent: line 0"


def test_the_window_with_the_pane_fits_a_1280_by_800_screen(make_window, qtbot) -> None:
    w = make_window()
    minimum = w.minimumSizeHint()
    for screen in (QSize(1280, 800), QSize(1280, 768)):   # with a panel or dock taking 32 px
        size = fitting_size(screen, minimum)
        assert size.width() + FRAME.width() <= screen.width(), (size, screen)
        assert size.height() + FRAME.height() <= screen.height(), (size, screen)
    w.resize(fitting_size(QSize(1280, 768), minimum))
    qtbot.waitUntil(lambda: w.size() == fitting_size(QSize(1280, 768), minimum))
    pane = w.conversation
    assert pane.width() >= 380 and pane.rows.height() >= 250, pane.size()
    central = w.centralWidget().rect()
    for part in (pane, w.call_panel, w.connection_panel, w.event_log, w.call_bar.keypad_button):
        top_left = part.mapTo(w.centralWidget(), part.rect().topLeft())
        assert central.contains(top_left) and central.contains(top_left + part.rect().bottomRight()), part
