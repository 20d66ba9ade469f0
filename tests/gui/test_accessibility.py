"""Every control has an accessible name, and the app works from the keyboard alone."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QWidget,
)

from helpers.qt_waits import until
from polyphone import config
from polyphone.gui.dialogs.history_dialog import HistoryDialog
from polyphone.gui.dialogs.profile_dialog import ProfileDialog
from polyphone.gui.dialogs.settings_dialog import SettingsDialog

CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractSlider, QAbstractItemView, QPlainTextEdit)


def unnamed_controls(root: QWidget) -> list[str]:
    """Controls a person can reach (visible, focusable) that a screen reader could not name."""
    missing = []
    for w in root.findChildren(QWidget):
        if isinstance(w, QScrollBar) or not w.isVisibleTo(root):
            continue
        reachable = bool(w.focusPolicy() & Qt.FocusPolicy.TabFocus)
        if isinstance(w, (*CONTROLS, QLabel)) and reachable and not w.accessibleName().strip():
            text = getattr(w, "text", lambda: "")()
            missing.append(f"{type(w).__name__} {w.objectName()!r} text={text!r}")
    return missing


def test_every_control_of_the_main_window_is_named(make_window) -> None:
    w = make_window()
    assert unnamed_controls(w) == []
    w.banner.show_notice("x", action="call_again", label="Call again")
    assert unnamed_controls(w) == []


def test_every_control_of_the_dialogs_is_named(make_window, qtbot) -> None:
    w = make_window()
    profiles = w.open_profiles(select="PolyAI US")
    for tab in range(profiles.form.count()):
        profiles.form.setCurrentIndex(tab)
        assert unnamed_controls(profiles) == [], f"profile dialog tab {tab}"
    profiles.reject()
    for dialog in (w.open_settings(), w.open_history()):
        assert isinstance(dialog, (SettingsDialog, HistoryDialog))
        assert unnamed_controls(dialog) == [], type(dialog).__name__
        dialog.reject()
    assert isinstance(profiles, ProfileDialog)


def focus_chain(w: QWidget, start: QWidget, presses: int = 60) -> list[QWidget]:
    start.setFocus(Qt.FocusReason.TabFocusReason)
    seen = []
    for _ in range(presses):
        focused = w.focusWidget()
        if focused is not None and focused not in seen:
            seen.append(focused)
        w.focusNextChild()
    return seen


def test_tab_reaches_every_control_a_call_needs(make_window) -> None:
    w = make_window(profiles=[config.Profile(name="Bookings", variants=[config.Variant("Fast", "v1")])])
    chain = focus_chain(w, w.call_bar.profile_box)
    names = [x.accessibleName() for x in chain]
    for needed in ("Agent profile", "Variant", "Edit profile", "Call", "Mute microphone", "Microphone",
                   "Test microphone", "Speaker", "Test speaker", "Speaker volume", "Minimum log level",
                   "Log text filter", "Copy log", "Event log"):
        assert needed in names, (needed, names)
    order = [names.index(n) for n in ("Agent profile", "Variant", "Call", "Mute microphone", "Microphone",
                                       "Speaker", "Speaker volume", "Minimum log level")]
    assert order == sorted(order), names


def test_a_whole_call_from_the_keyboard(make_window, qloop, qtbot) -> None:
    w = make_window(profiles=[config.Profile(name=config.LOCAL_PROFILE, region=config.LOCAL, mode="echo",
                                             fetch_ice_servers=False)])
    bar = w.call_bar

    async def scenario():
        bar.profile_box.setFocus()
        qtbot.keyClick(bar.profile_box, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        await until(lambda: w.bridge.state == "CONNECTED")
        qtbot.keyClick(bar.profile_box, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
        await until(lambda: w.bridge.muted)
        assert bar.mute_button.isChecked() and bar.mute_button.text() == "Unmute"
        qtbot.keyClick(w.event_log.search, Qt.Key.Key_Escape)
        await until(lambda: w.bridge.state == "ENDED")
        qtbot.keyClick(bar.profile_box, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
        await until(lambda: not w.bridge.muted)
        # the call button itself works with the space bar
        bar.call_button.setFocus()
        qtbot.keyClick(bar.call_button, Qt.Key.Key_Space)
        await until(lambda: w.bridge.state == "CONNECTED")
        qtbot.keyClick(bar.call_button, Qt.Key.Key_Space)
        await until(lambda: w.bridge.state == "ENDED")
        await until(lambda: not w.bridge.busy)      # the history row is written after ENDED shows

    qloop.run(scenario(), 30)
    assert [r.result for r in w.bridge.history.list()] == ["ended", "ended"]


def test_escape_does_nothing_when_idle(make_window, qloop, qtbot) -> None:
    w = make_window()
    qtbot.keyClick(w.call_bar.profile_box, Qt.Key.Key_Escape)
    qloop.run(until(lambda: True))
    assert w.bridge.state == "IDLE" and w.isVisible()


def mnemonics(root: QWidget) -> dict[str, list[str]]:
    """Alt+letter shortcuts of the visible labels, buttons, tabs and menus, by letter."""
    from PySide6.QtWidgets import QMainWindow, QTabWidget
    found: dict[str, list[str]] = {}

    def add(text: str) -> None:
        i = text.replace("&&", "").find("&")
        if 0 <= i < len(text) - 1:
            found.setdefault(text.replace("&&", "")[i + 1].lower(), []).append(text)

    for w in root.findChildren(QWidget):
        if not w.isVisibleTo(root):
            continue
        if isinstance(w, QLabel) and w.buddy() is not None and w.buddy().isVisibleTo(root):
            add(w.text())
        elif isinstance(w, QAbstractButton):
            add(w.text())
        elif isinstance(w, QTabWidget):
            for i in range(w.count()):
                add(w.tabText(i))
    if isinstance(root, QMainWindow):
        for action in root.menuBar().actions():
            add(action.text())
    return {k: v for k, v in found.items() if len(v) > 1}


def test_no_two_visible_controls_share_an_alt_shortcut(make_window) -> None:
    w = make_window(profiles=[config.Profile(name="Bookings", variants=[config.Variant("Fast", "v1")])])
    assert mnemonics(w) == {}
    profiles = w.open_profiles(select="Bookings")
    for tab in range(profiles.form.count()):
        profiles.form.setCurrentIndex(tab)
        assert mnemonics(profiles) == {}, f"profile dialog tab {tab}"
    profiles.reject()
    settings = w.open_settings()
    settings.recording.setChecked(True)
    assert mnemonics(settings) == {}
    settings.reject()
    history = w.open_history()
    assert mnemonics(history) == {}
    history.reject()
