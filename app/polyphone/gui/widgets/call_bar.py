"""The top of the window: which agent (profile + variant), the Call button, status, timer, mute."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from ...config import Profile
from ..icons import icon
from .accessible import named
from .call_button import CallButton
from .keypad import KeypadButton

STATUS_TEXT = {
    "IDLE": "Ready", "STARTING": "Starting…", "CONNECTING": "Connecting…",
    "NEGOTIATING": "Setting up audio…", "CONNECTED": "Connected", "ENDING": "Ending…",
    "ENDED": "Call ended", "FAILED": "Call failed",
}
DEFAULT_VARIANT = "Default"


class CallBar(QWidget):
    call_requested = Signal(str, str)      # profile name, variant name ("" = the profile's default)
    hangup_requested = Signal()
    mute_toggled = Signal(bool)
    edit_profile_requested = Signal(str)
    profile_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profile_box = named(QComboBox(), "Agent profile", tip="The agent to call")
        self.profile_box.setMinimumContentsLength(18)
        self.variant_box = named(QComboBox(), "Variant", tip="Which of the profile's variants to call")
        self.variant_box.setMinimumContentsLength(10)
        self.edit_button = named(QToolButton(), "Edit profile", tip="Edit this agent profile and its token")
        self.edit_button.setText("Edit…")
        self.edit_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.call_button = CallButton()
        self.status = named(QLabel(STATUS_TEXT["IDLE"]), "Call status", object_name="callStatus")
        self.reason = named(QLabel(""), "Call status detail")
        self.reason.setWordWrap(True)
        self.reason.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.timer_label = named(QLabel("00:00"), "Call duration", object_name="callTimer")
        self.mute_button = named(QPushButton("Mute"), "Mute microphone",
                                 tip="Mute or unmute your microphone (Ctrl+M)")
        self.mute_button.setCheckable(True)
        self.mute_button.setIcon(icon("mic.svg"))
        self.mute_button.setIconSize(QSize(18, 18))
        self.keypad_button = KeypadButton()
        self.keypad_button.setEnabled(False)
        self._layout()
        self._elapsed = QElapsedTimer()
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._show_elapsed)
        self.timer_label.hide()
        self.profiles: list[Profile] = []
        self.state = "IDLE"
        self.profile_box.currentIndexChanged.connect(self._on_profile_index)
        self.edit_button.clicked.connect(lambda: self.edit_profile_requested.emit(self.current_profile()))
        self.call_button.call_clicked.connect(self.request_call)
        self.call_button.hangup_clicked.connect(self.hangup_requested)
        self.mute_button.toggled.connect(self._on_mute)

    def _layout(self) -> None:
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(10)
        agent_label, variant_label = QLabel("&Agent"), QLabel("&Variant")
        agent_label.setBuddy(self.profile_box)
        variant_label.setBuddy(self.variant_box)
        grid.addWidget(agent_label, 0, 0)
        grid.addWidget(self.profile_box, 0, 1)
        grid.addWidget(self.edit_button, 0, 2)
        grid.addWidget(variant_label, 1, 0)
        grid.addWidget(self.variant_box, 1, 1)
        grid.setColumnStretch(1, 1)
        status_row = QHBoxLayout()
        status_row.setSpacing(14)
        status_row.addWidget(self.status)
        status_row.addWidget(self.timer_label)
        status_row.addStretch(1)
        status_row.addWidget(self.keypad_button)
        status_row.addWidget(self.mute_button)
        grid.addLayout(status_row, 2, 0, 1, 3)
        grid.addWidget(self.reason, 3, 0, 1, 3)
        grid.addWidget(self.call_button, 0, 3, 3, 1, Qt.AlignmentFlag.AlignCenter)

    # --- profiles -------------------------------------------------------------------

    def set_profiles(self, profiles: list[Profile], select: str = "", variant: str = "") -> None:
        self.profiles = list(profiles)
        self.profile_box.blockSignals(True)
        self.profile_box.clear()
        for p in self.profiles:
            self.profile_box.addItem(p.name + ("  (built in, runs on this computer)" if p.is_local else ""),
                                     p.name)
        index = max(0, self.profile_box.findData(select)) if select else 0
        self.profile_box.setCurrentIndex(index)
        self.profile_box.blockSignals(False)
        self._fill_variants(variant)

    def current_profile(self) -> str:
        return self.profile_box.currentData() or ""

    def current_variant(self) -> str:
        return self.variant_box.currentData() or ""

    def _profile(self) -> Profile | None:
        return next((p for p in self.profiles if p.name == self.current_profile()), None)

    def _on_profile_index(self, _index: int) -> None:
        self._fill_variants()
        self.profile_changed.emit(self.current_profile())

    def _fill_variants(self, select: str = "") -> None:
        profile = self._profile()
        self.variant_box.clear()
        default = f"{DEFAULT_VARIANT} ({profile.variant_id})" if profile and profile.variant_id \
            else DEFAULT_VARIANT
        self.variant_box.addItem(default, "")
        for v in (profile.variants if profile else []):
            self.variant_box.addItem(f"{v.name} ({v.variant_id})", v.name)
        self.variant_box.setCurrentIndex(max(0, self.variant_box.findData(select)))
        self.variant_box.setEnabled(self.variant_box.count() > 1 and not self._in_call())

    # --- call state -----------------------------------------------------------------

    def request_call(self) -> None:
        if self.call_button.action == "call" and self.current_profile():
            self.call_requested.emit(self.current_profile(), self.current_variant())

    def _in_call(self) -> bool:
        return self.state not in ("IDLE", "ENDED", "FAILED")

    def set_state(self, state: str, reason: str = "") -> None:
        previous, self.state = self.state, state
        self.call_button.set_state(state)
        self.status.setText(STATUS_TEXT.get(state, state.title()))
        # a failure is explained by the banner; here only how a call ended or what starts
        self.reason.setText(reason if state in ("ENDED", "STARTING") else "")
        busy = self._in_call()
        self.profile_box.setEnabled(not busy)
        self.variant_box.setEnabled(not busy and self.variant_box.count() > 1)
        self.edit_button.setEnabled(not busy)
        self.keypad_button.setEnabled(state == "CONNECTED")
        self.timer_label.setVisible(state in ("CONNECTED", "ENDING") or
                                    (state == "ENDED" and self._elapsed.isValid()))
        if state == "CONNECTED" and previous != "CONNECTED":
            self._elapsed.start()
            self._tick.start()
            self._show_elapsed()
        elif state == "STARTING":
            self.timer_label.setText("00:00")
            self.keypad_button.keypad.clear()
            self._elapsed.invalidate()
        elif state in ("ENDING", "ENDED", "FAILED"):
            self._tick.stop()

    def _show_elapsed(self) -> None:
        s = self._elapsed.elapsed() // 1000 if self._elapsed.isValid() else 0
        self.timer_label.setText(f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600
                                 else f"{s // 60:02d}:{s % 60:02d}")

    def _on_mute(self, muted: bool) -> None:
        self.mute_button.setText("Unmute" if muted else "Mute")
        self.mute_button.setIcon(icon("mic-off.svg" if muted else "mic.svg"))
        self.mute_button.setAccessibleName("Unmute microphone" if muted else "Mute microphone")
        self.mute_toggled.emit(muted)

    def toggle_mute(self) -> None:
        self.mute_button.toggle()
