"""Connection: signaling, ICE gathering/connection, DTLS, the selected candidate pair, ids."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from .accessible import named

ROWS = (("signaling", "Signaling"), ("ice-gathering", "ICE gathering"),
        ("ice-connection", "ICE connection"), ("dtls", "DTLS"))
GOOD = {"open", "connected", "completed", "complete"}
WAIT = {"connecting", "new", "gathering", "checking", "reconnecting", "negotiating"}
BAD = {"failed", "closed", "disconnected", "lost"}
PAIR_WORDS = {"host": "direct (host)", "srflx": "through NAT (srflx)", "prflx": "through NAT (prflx)",
              "relay": "relayed by TURN (relay)"}


def pill_for(state: str) -> str:
    return "good" if state in GOOD else "bad" if state in BAD else "wait" if state in WAIT else "none"


def _selectable(label: QLabel, name: str) -> QLabel:
    named(label, name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                  | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    label.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return label


class ConnectionPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Connection", parent)
        self.setAccessibleName("Connection")
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel] = {}
        for key, title in ROWS:
            label = named(QLabel("—"), title)
            self.values[key] = label
            form.addRow(title, label)
        self.pair_kind = named(QLabel("—"), "Selected candidate pair type")
        self.pair_local = _selectable(QLabel("—"), "Local candidate")
        self.pair_remote = _selectable(QLabel("—"), "Remote candidate")
        self.session = _selectable(QLabel("—"), "Session ID")
        self.call_sid = _selectable(QLabel("—"), "Call SID")
        form.addRow("Audio path", self.pair_kind)
        form.addRow("Local", self.pair_local)
        form.addRow("Remote", self.pair_remote)
        form.addRow("Session ID", self.session)
        form.addRow("Call SID", self.call_sid)
        self.reset()

    def reset(self) -> None:
        for label in self.values.values():
            self._show(label, "—")
        for label in (self.pair_kind, self.pair_local, self.pair_remote, self.session, self.call_sid):
            label.setText("—")

    def _show(self, label: QLabel, state: str) -> None:
        label.setText(state)
        label.setProperty("pill", pill_for(state))
        label.style().unpolish(label)
        label.style().polish(label)

    def set_component(self, component: str, state: str) -> None:
        label = self.values.get(component)
        if label is not None:
            self._show(label, state)

    def set_pair(self, pair: Any) -> None:
        local, remote = pair.local, pair.remote
        self.pair_kind.setText(f"{PAIR_WORDS.get(local.type, local.type)} over {local.protocol.upper()}")
        self.pair_local.setText(f"{local.type}  {local.address}:{local.port}")
        self.pair_remote.setText(f"{remote.type}  {remote.address}:{remote.port}")

    def set_session(self, session_id: str, call_sid: str) -> None:
        self.session.setText(session_id or "—")
        self.call_sid.setText(call_sid or "—")
