"""The phone keypad: a tool button in the call bar that opens a 4×3 grid of keys (1-9, *, 0, #).

Each key pressed, by mouse or typed on the keyboard while the keypad is open, is one
`pressed(key)`; the window sends it to the agent as a keypad tone. Esc or a click outside
closes the keypad.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from .accessible import named

KEYS = "123456789*0#"
SPOKEN = {"*": "star", "#": "hash"}
SHOWN_DIGITS = 24          # the keys sent, as shown at the bottom of the keypad
FLASH_MS = 120             # a key typed on the keyboard shows pressed this long


def key_name(key: str) -> str:
    return f"Key {SPOKEN.get(key, key)}"


class Keypad(QFrame):
    """The grid itself, a popup window."""

    pressed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        named(self, "Keypad", "Keys 0 to 9, star and hash; type them or click them")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.keys: dict[str, QToolButton] = {}
        for i, key in enumerate(KEYS):
            button = named(QToolButton(), key_name(key))
            button.setText(key)
            button.setFixedSize(QSize(52, 40))
            font = button.font()
            font.setPointSizeF(font.pointSizeF() * 1.3)
            button.setFont(font)
            button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            button.clicked.connect(lambda _checked=False, key=key: self.press(key))
            grid.addWidget(button, i // 3, i % 3)
            self.keys[key] = button
        self._release = QTimer(self)      # a key typed on the keyboard shows pressed a moment
        self._release.setSingleShot(True)
        self._release.setInterval(FLASH_MS)
        self._release.timeout.connect(lambda: [b.setDown(False) for b in self.keys.values()])
        self.sent = named(QLabel(""), "Keys sent")
        self.sent.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sent.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout(self)
        box.addLayout(grid)
        box.addWidget(self.sent)

    def press(self, key: str) -> None:
        self.sent.setText((self.sent.text() + key)[-SHOWN_DIGITS:])
        self.pressed.emit(key)

    def clear(self) -> None:
        self.sent.setText("")

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        key = event.text()
        if len(key) == 1 and key in KEYS:
            self.keys[key].setDown(True)
            self._release.start()
            self.press(key)
            event.accept()
            return
        super().keyPressEvent(event)   # Esc closes the popup


class KeypadButton(QToolButton):
    """"Keypad" in the call bar: opens the keypad below itself; enabled only during a call."""

    digit_pressed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "Keypad", tip="Send keypad tones to the agent (keys 0-9, * and #)")
        self.setText("Keypad")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.keypad = Keypad(self)
        self.keypad.pressed.connect(self.digit_pressed)
        self.clicked.connect(self.open_keypad)

    def open_keypad(self) -> None:
        if not self.isEnabled():
            return
        self.keypad.adjustSize()
        self.keypad.move(self.mapToGlobal(QPoint(self.width() - self.keypad.width(), self.height())))
        self.keypad.show()
        self.keypad.activateWindow()
        self.keypad.keys["1"].setFocus(Qt.FocusReason.PopupFocusReason)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        super().changeEvent(event)
        if event.type() == QEvent.Type.EnabledChange and not self.isEnabled():
            self.keypad.hide()   # the call ended with the keypad open
