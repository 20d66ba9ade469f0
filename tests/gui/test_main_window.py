"""The main window driven like a person would: a real call to the local gateway, errors, closing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from helpers.qt_waits import until
from polyphone import config
from polyphone.gui.dialogs.profile_dialog import ProfileDialog
from polyphone.localgw import LocalGateway

TOKEN = "window-test-token-3b9f"


def test_a_call_from_the_window_shows_state_connection_stats_and_history(make_window, qloop, qtbot):
    w = make_window()
    bar = w.call_bar
    assert bar.current_profile() == config.LOCAL_PROFILE and bar.call_button.text() == "Call"

    async def scenario():
        qtbot.mouseClick(bar.call_button, Qt.MouseButton.LeftButton)
        await until(lambda: bar.status.text() == "Connected")
        assert bar.call_button.text() == "Hang up" and not bar.profile_box.isEnabled()
        await until(lambda: w.call_panel.value_labels["rtt"].text() != "—", timeout=4)
        qtbot.keyClick(w, Qt.Key.Key_Escape)
        await until(lambda: bar.status.text() == "Call ended")
        await until(lambda: not w.bridge.busy)      # the devices closed, the history row written

    qloop.run(scenario())
    panel = w.connection_panel
    assert panel.values["ice-connection"].text() in ("completed", "closed")
    assert "direct (host)" in panel.pair_kind.text() and panel.pair_local.text().startswith("host ")
    assert panel.session.text() not in ("", "—")
    assert w.call_panel.codec.text() == "opus/48000"
    assert bar.call_button.text() == "Call" and bar.profile_box.isEnabled()
    log_text = w.event_log.text.toPlainText()
    assert "CONNECTED" in log_text and w.bridge.phone.gateway.token not in log_text
    assert w.bridge.history.list()[0].session_id == panel.session.text()
    assert w.banner.isHidden()


def test_closing_the_window_during_a_call_hangs_up_cleanly(make_window, qloop):
    w = make_window()
    holder = {}

    async def scenario():
        w.bridge.place_call(config.LOCAL_PROFILE, "")
        await until(lambda: w.bridge.state == "CONNECTED")
        holder["gw"] = w.bridge.phone.gateway._gateway
        w.close()
        assert w.isVisible()  # stays until the engine has shut down
        await until(lambda: w._shut_down, timeout=15)

    qloop.run(scenario())
    assert not w.isVisible()
    assert list(holder["gw"].ended.values()) == ["closed by the client"]
    assert w.bridge.history.list()[0].result == "ended"


def test_unauthorized_opens_the_token_field_and_a_new_token_works(make_window, qloop, qtbot):
    gw = LocalGateway(tokens=[TOKEN])
    url = qloop.run(gw.start())
    w = make_window(profiles=[config.Profile(name="Staging", region=config.CUSTOM, url=url, mode="echo",
                                             fetch_ice_servers=False)])
    w.bridge.vault.save("Staging", "expired-token")
    try:
        async def fail_then_fix():
            w.call_bar.request_call()
            await until(lambda: w.call_bar.status.text() == "Call failed")
        qloop.run(fail_then_fix())
        assert not w.banner.isHidden() and "UNAUTHORIZED" in w.banner.title.text()
        assert "expired-token" not in w.event_log.text.toPlainText()
        qtbot.mouseClick(w.banner.action_button, Qt.MouseButton.LeftButton)
        dialog = w.dialog
        assert isinstance(dialog, ProfileDialog) and dialog.form.currentIndex() == 0
        qloop.run(until(lambda: QApplication.focusWidget() is dialog.form.token, timeout=3))
        qloop.run(dialog.ready.wait())
        assert "stored in the keyring" in dialog.form.token_status.text()
        qtbot.keyClicks(dialog.form.token, TOKEN)
        assert dialog.form.token.echoMode() == dialog.form.token.EchoMode.Password
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        qloop.run(until(lambda: w.dialog is None))   # the token is written in a worker thread
        assert w.bridge.vault.get("Staging").token == TOKEN

        async def call_again():
            qtbot.mouseClick(w.call_bar.call_button, Qt.MouseButton.LeftButton)
            await until(lambda: w.call_bar.status.text() == "Connected")
            w.bridge.hang_up()
            await until(lambda: w.call_bar.status.text() == "Call ended")
            await until(lambda: not w.bridge.busy)
        qloop.run(call_again())
        assert w.banner.isHidden()
        assert [r.result for r in w.bridge.history.list()] == ["ended", "failed"]
    finally:
        qloop.run(gw.stop())


def test_history_and_settings_open_from_the_window(make_window, qloop, qtbot):
    w = make_window()
    history = w.open_history()
    assert history.table.rowCount() == 0 and "0 call" in history.status.text()
    history.reject()
    settings = w.open_settings()
    settings.theme.setCurrentIndex(settings.theme.findData("dark"))
    settings.log_level.setCurrentIndex(settings.log_level.findData("debug"))
    qtbot.mouseClick(settings.buttons.button(settings.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert w.settings.theme == "dark" and w.event_log.level_box.currentData() == "debug"
    assert config.SettingsStore(w.settings_store.path).load().theme == "dark"
