"""The main window: composes the widgets and wires them to the bridge's signals and commands.

Nothing here touches asyncio or the engine: calls, devices and checks go
through `EngineBridge` commands; profiles and settings are plain files.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QGroupBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .. import APP_NAME, __version__
from ..config import ConfigError, SettingsStore
from ..engine.events import YOU_HUNG_UP
from ..services import errors
from ..services.errors import SILENT_AGENT
from .bridge import EngineBridge
from .dialogs.history_dialog import HistoryDialog
from .dialogs.profile_dialog import ProfileDialog
from .dialogs.run_dialog import RunDialog
from .dialogs.settings_dialog import SettingsDialog
from .icons import icon
from .theme import apply_theme
from .widgets.call_bar import CallBar
from .widgets.call_panel import CallPanel
from .widgets.connection_panel import ConnectionPanel
from .widgets.conversation import ConversationPane
from .widgets.device_panel import DevicePanel
from .widgets.error_banner import ErrorBanner
from .widgets.event_log import EventLog

log = logging.getLogger(__name__)
DEFAULT_SIZE = QSize(1240, 780)
FRAME = QSize(16, 48)          # room for the window manager's borders and title bar


def fitting_size(available: QSize, minimum: QSize) -> QSize:
    """The window's first size: the default, smaller on a smaller screen, never below `minimum`."""
    return DEFAULT_SIZE.boundedTo(available - FRAME).expandedTo(minimum)


class MainWindow(QMainWindow):
    closed = Signal()          # emitted once, after the bridge has shut down and the window closed

    def __init__(self, bridge: EngineBridge, settings_store: SettingsStore | None = None,
                 settings_writable: bool = True) -> None:
        super().__init__()
        self.bridge = bridge
        self.settings = bridge.settings
        self.settings_store = settings_store or SettingsStore()
        self.settings_writable = settings_writable
        self._closing = False
        self._shut_down = False
        self._calls_started = 0
        self.dialog: ProfileDialog | SettingsDialog | HistoryDialog | None = None
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(icon("polyphone.svg"))
        self.setAccessibleName(f"{APP_NAME} main window")
        self._build()
        self._build_actions()
        self._wire()
        self.reload_profiles(self.settings.last_profile, self.settings.last_variant)
        self.device_panel.set_volume(self.settings.volume)
        self.event_log.set_min_level(self.settings.log_level)
        self.conversation.set_captions_on(self.settings.captions)
        self.resize(fitting_size(self.screen().availableGeometry().size(), self.minimumSizeHint()))

    # --- layout -------------------------------------------------------------------------

    def _build(self) -> None:
        self.banner = ErrorBanner()
        self.call_bar = CallBar()
        self.device_panel = DevicePanel()
        self.connection_panel = ConnectionPanel()
        self.call_panel = CallPanel()
        self.conversation = ConversationPane()
        self.event_log = EventLog(redact=self.bridge.redact)
        self.event_log.text.setMinimumHeight(40)   # a few lines, so the window fits a 1280×800 screen
        devices = QGroupBox("Audio devices")
        devices.setAccessibleName("Audio devices")
        QVBoxLayout(devices).addWidget(self.device_panel)
        panels = QSplitter(Qt.Orientation.Horizontal)
        panels.addWidget(self.connection_panel)
        panels.addWidget(self.call_panel)
        panels.setStretchFactor(1, 1)
        panels.setSizes([300, 440])
        log_box = QGroupBox("Event log")
        log_box.setAccessibleName("Event log section")
        QVBoxLayout(log_box).addWidget(self.event_log)
        lower = QSplitter(Qt.Orientation.Vertical)
        lower.addWidget(panels)
        lower.addWidget(log_box)
        lower.setStretchFactor(1, 1)
        body = QSplitter(Qt.Orientation.Horizontal)   # the conversation beside quality and log
        body.addWidget(lower)
        body.addWidget(self.conversation)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        body.setSizes([750, 470])
        central = QWidget()
        box = QVBoxLayout(central)
        box.addWidget(self.banner)
        box.addWidget(self.call_bar)
        box.addWidget(devices)
        box.addWidget(body, 1)
        self.setCentralWidget(central)
        self.state_label = QLabel("Ready")
        self.state_label.setAccessibleName("Status")
        self.keyring_label = QLabel("Keyring: checking…")
        self.keyring_label.setAccessibleName("Keyring status")
        self.lag_label = QLabel("")
        self.lag_label.setAccessibleName("Event loop lag")
        self.lag_label.setToolTip("How late the app's event loop ran: the worst pause of the "
                                  "interface, last second and since the call started")
        bar = self.statusBar()
        bar.addWidget(self.state_label, 1)
        bar.addPermanentWidget(self.keyring_label)
        bar.addPermanentWidget(self.lag_label)
        QWidget.setTabOrder(self.call_bar.call_button, self.call_bar.mute_button)

    def _action(self, text: str, shortcuts: list, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.call_action = self._action("&Call", ["Ctrl+Return", "Ctrl+Enter"], self.call_bar.request_call)
        self.hangup_action = self._action("&Hang up", ["Esc"], self._hang_up)
        self.mute_action = self._action("&Mute microphone", ["Ctrl+M"], self.call_bar.toggle_mute)
        quit_action = self._action("&Quit", [QKeySequence.StandardKey.Quit, "Ctrl+Q"], self.close)
        profiles = self._action("&Edit profiles…", ["Ctrl+P"], lambda: self.open_profiles())
        new_profile = self._action("&New profile…", ["Ctrl+N"], lambda: self.open_profiles(new=True))
        history = self._action("Call &history…", ["Ctrl+H"], self.open_history)
        run_script = self._action("&Run a caller script…", ["Ctrl+R"], self.open_run_dialog)
        settings = self._action("&Settings…", ["Ctrl+,"], self.open_settings)
        about = self._action(f"&About {APP_NAME}", [], self._about)
        menus = self.menuBar()
        call_menu = menus.addMenu("&Call")
        for a in (self.call_action, self.hangup_action, self.mute_action):
            call_menu.addAction(a)
        call_menu.addSeparator()
        call_menu.addAction(quit_action)
        agents = menus.addMenu("A&gents")
        agents.addAction(profiles)
        agents.addAction(new_profile)
        tools = menus.addMenu("&Tools")
        tools.addAction(run_script)
        tools.addAction(history)
        tools.addAction(settings)
        menus.addMenu("&Help").addAction(about)

    def _wire(self) -> None:
        b, bar, dev = self.bridge, self.call_bar, self.device_panel
        b.state_changed.connect(self._on_state)
        b.connection_changed.connect(self.connection_panel.set_component)
        b.session_started.connect(self.connection_panel.set_session)
        b.pair_selected.connect(self.connection_panel.set_pair)
        b.stats_sampled.connect(self.call_panel.add_stats)
        b.turn_latency.connect(self.call_panel.add_turn)
        b.audio_stats.connect(self.call_panel.set_audio_stats)
        b.media_stalled.connect(lambda s: bar.reason.setText(
            f"Media lost: no audio from the agent for {s:.0f} s. Waiting for it to return…"))
        b.media_resumed.connect(lambda _gap: bar.reason.setText(""))
        b.agent_silence.connect(lambda active, _s: bar.reason.setText(
            SILENT_AGENT if active else ""))
        b.call_error.connect(lambda e: self.banner.show_error(errors.explain(e), e.detail))
        b.log_line.connect(self.event_log.add)
        b.quality_warning.connect(self._on_quality)
        b.levels.connect(dev.set_levels)
        b.device_changed.connect(lambda kind, name, why: self.banner.show_notice(
            f"{why} Now using “{name}”.", f"{'Microphone' if kind == 'input' else 'Speaker'} changed"))
        b.devices_listed.connect(lambda ins, outs: dev.set_devices(
            ins, outs, self.settings.input_device, self.settings.output_device))
        b.check_finished.connect(dev.show_check_result)
        b.keyring_status.connect(self._on_keyring)
        b.notice.connect(self.banner.show_notice)
        b.loop_lag.connect(self._on_lag)
        b.call_finished.connect(self._on_finished)
        bar.call_requested.connect(b.place_call)
        bar.hangup_requested.connect(b.hang_up)
        bar.mute_toggled.connect(b.set_muted)
        bar.edit_profile_requested.connect(lambda name: self.open_profiles(select=name))
        bar.profile_changed.connect(self._remember_choice)
        bar.variant_box.currentIndexChanged.connect(lambda _i: self._remember_choice())
        dev.input_selected.connect(b.select_input)
        dev.output_selected.connect(b.select_output)
        dev.test_requested.connect(b.test_device)
        dev.volume_changed.connect(b.set_volume)
        self.banner.action_requested.connect(self._on_banner_action)
        self._wire_conversation()

    def _wire_conversation(self) -> None:
        b, pane = self.bridge, self.conversation
        b.caption.connect(pane.add_caption)
        b.captions_status.connect(pane.set_status)
        b.turn_latency.connect(pane.add_latency)
        b.levels.connect(pane.on_levels)
        pane.captions_toggled.connect(self._set_captions)
        self.call_bar.keypad_button.digit_pressed.connect(b.send_dtmf)

    # --- bridge -> widgets ------------------------------------------------------------------

    def _on_state(self, state: str, previous: str, reason: str) -> None:
        self.call_bar.set_state(state, reason)
        in_call = state not in ("IDLE", "ENDED", "FAILED")
        self.device_panel.set_in_call(in_call)
        if state == "STARTING":
            self.banner.clear()
            self.connection_panel.reset()
            self.call_panel.reset()
            self.conversation.reset()
            self._calls_started += 1
        elif state == "CONNECTED" and previous != "CONNECTED":
            self.conversation.call_started(time.monotonic())
        if not in_call:
            self.conversation.set_agent_speaking(False)
        if state == "ENDED" and reason and reason != YOU_HUNG_UP:
            self.banner.show_notice(reason, "Call ended")  # e.g. the agent hung up
        detail = f" — {reason}" if reason and state not in ("FAILED", "STARTING") else ""
        self.state_label.setText(self.call_bar.status.text() + detail)

    def _on_quality(self, warning) -> None:
        """A call-quality warning shows in the banner; when it recovers, the banner goes."""
        if warning.active:
            self._quality_kind = warning.kind
            self.banner.show_notice(warning.message, "Call quality")
        elif getattr(self, "_quality_kind", None) == warning.kind:
            self._quality_kind = None
            if self.banner.title.text() == "Call quality":  # not an error shown since
                self.banner.clear()

    def _on_lag(self, now: float, worst: float) -> None:
        text = f"UI lag {now:.0f} ms"
        if self._calls_started:
            text += f" · worst since the last call began {worst:.0f} ms"
        self.lag_label.setText(text)

    def _on_keyring(self, backend: str, problem: str) -> None:
        if problem:
            self.keyring_label.setText("Keyring: unavailable (session-only tokens)")
            self.keyring_label.setToolTip(problem)
        else:
            self.keyring_label.setText(f"Keyring: {backend}")
            self.keyring_label.setToolTip("Tokens are saved only in this keyring")

    def _on_finished(self, record) -> None:
        if record.result == "ended":
            self.state_label.setText(f"Call ended after {record.duration_s:.0f} s")
        if isinstance(self.dialog, HistoryDialog) and self.dialog.isVisible():
            self.dialog.reload()

    def _set_captions(self, on: bool) -> None:
        self.settings.captions = on
        self.save_settings()
        self.bridge.set_captions(on)

    def _remember_choice(self, *_args) -> None:
        self.settings.last_profile = self.call_bar.current_profile()
        self.settings.last_variant = self.call_bar.current_variant()

    def _hang_up(self) -> None:
        if self.call_bar.call_button.action == "hangup":
            self.bridge.hang_up()

    def _on_banner_action(self, action: str) -> None:
        if action == errors.EDIT_TOKEN:
            self.open_profiles(select=self.call_bar.current_profile(), focus="token")
        elif action == errors.EDIT_ICE:
            self.open_profiles(select=self.call_bar.current_profile(), focus="ice")
        elif action == errors.EDIT_PROFILE:
            self.open_profiles(select=self.call_bar.current_profile())
        elif action == errors.CHOOSE_DEVICE:
            self.device_panel.input_box.setFocus()
        elif action == errors.CALL_AGAIN:
            self.banner.clear()
            self.call_bar.request_call()

    # --- dialogs ------------------------------------------------------------------------

    def reload_profiles(self, select: str = "", variant: str = "") -> None:
        try:
            profiles = self.bridge.profiles.load()
        except ConfigError as exc:
            self.banner.show_notice(str(exc), "Profiles could not be read")
            profiles = []
        self.call_bar.set_profiles(profiles, select or self.call_bar.current_profile(), variant)

    def _show_dialog(self, dialog) -> None:
        self.dialog = dialog
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        dialog.open()

    def open_profiles(self, select: str = "", focus: str = "", new: bool = False) -> ProfileDialog:
        dialog = ProfileDialog(self.bridge.profiles, self.bridge.vault, self,
                               select=select or self.call_bar.current_profile(), focus=focus, new=new,
                               offload=self.bridge.keyring)
        dialog.saved.connect(lambda name: self.reload_profiles(name))
        dialog.notice.connect(lambda text: self.banner.show_notice(text, "Tokens"))  # e.g. session only
        self._show_dialog(dialog)
        return dialog

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.settings, self)
        dialog.accepted.connect(self._settings_changed)
        self._show_dialog(dialog)
        return dialog

    def _settings_changed(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.theme)
        self.event_log.set_min_level(self.settings.log_level)
        self.conversation.set_captions_on(self.settings.captions)
        logging.getLogger("polyphone").setLevel(self.settings.log_level.upper())
        self.bridge.apply_processing()
        self.bridge.apply_speech()
        self.save_settings()

    def open_run_dialog(self) -> RunDialog:
        dialog = RunDialog(self.bridge, lambda: (self.call_bar.current_profile(),
                                                 self.call_bar.current_variant()), self)
        self._show_dialog(dialog)
        return dialog

    def open_history(self) -> HistoryDialog:
        dialog = HistoryDialog(self.bridge.history, self)
        self._show_dialog(dialog)
        return dialog

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"{APP_NAME} {__version__}\nA softphone for PolyAI voice agents.")

    def save_settings(self) -> None:
        if not self.settings_writable:
            return
        try:
            self.settings_store.save(self.settings)
        except (ConfigError, OSError) as exc:
            self.banner.show_notice(f"The settings could not be saved: {exc}", "Settings not saved")

    # --- closing --------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """The first close hangs up and shuts the engine down; the window closes when that is done."""
        if self._shut_down:
            event.accept()
            return
        event.ignore()
        if self._closing:
            return
        self._closing = True
        self.setEnabled(False)
        self.state_label.setText("Ending the call and closing…" if self.bridge.busy else "Closing…")
        self.save_settings()
        if isinstance(self.dialog, SettingsDialog):
            self.dialog.reject()         # a model pull under way stops
        self.bridge.shut_down.connect(self._after_shutdown)
        self.bridge.close_down()

    def _after_shutdown(self) -> None:
        self._shut_down = True
        self.close()
        self.closed.emit()

