"""The large Call / Hang up button; its text, colour and action follow the call state."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QPushButton, QSizePolicy, QWidget

from ..icons import icon
from .accessible import named

# state -> (text, look, what a click does)
_LOOKS = {
    "IDLE": ("Call", "call", "call"),
    "ENDED": ("Call", "call", "call"),
    "FAILED": ("Call again", "call", "call"),
    "STARTING": ("Hang up", "hangup", "hangup"),
    "CONNECTING": ("Hang up", "hangup", "hangup"),
    "NEGOTIATING": ("Hang up", "hangup", "hangup"),
    "CONNECTED": ("Hang up", "hangup", "hangup"),
    "ENDING": ("Ending…", "busy", ""),
}


class CallButton(QPushButton):
    call_clicked = Signal()
    hangup_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Call", parent)
        named(self, "Call", object_name="callButton")
        self.setMinimumSize(QSize(150, 52))
        self.setIconSize(QSize(22, 22))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.state = "IDLE"
        self.action = "call"
        self.clicked.connect(self._on_click)
        self.set_state("IDLE")

    def set_state(self, state: str) -> None:
        text, look, action = _LOOKS.get(state, _LOOKS["IDLE"])
        self.state, self.action = state, action
        self.setText(text)
        self.setAccessibleName(text.rstrip("…"))
        self.setToolTip({"call": "Call the chosen agent (Ctrl+Enter)",
                         "hangup": "End the call (Esc)"}.get(action, "The call is ending"))
        self.setIcon(icon("call.svg" if look == "call" else "hang-up.svg") if look != "busy" else QIcon())
        self.setEnabled(bool(action))
        self.setProperty("look", look)
        self.style().unpolish(self)
        self.style().polish(self)

    def _on_click(self) -> None:
        if self.action == "call":
            self.call_clicked.emit()
        elif self.action == "hangup":
            self.hangup_clicked.emit()
