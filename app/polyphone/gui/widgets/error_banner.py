"""The banner above the window's content: what happened, what to do, and one button to do it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ...services.errors import Explanation
from .accessible import named


class ErrorBanner(QFrame):
    action_requested = Signal(str)      # an errors.* action key

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "Problem", object_name="errorBanner")
        self.title = named(QLabel(), "Problem title", object_name="bannerTitle")
        self.what = named(QLabel(), "What happened")
        self.what.setWordWrap(True)
        self.todo = named(QLabel(), "What to do")
        self.todo.setWordWrap(True)
        self.action_button = named(QPushButton(), "Fix it")
        self.copy_button = named(QPushButton("Copy details"), "Copy problem details")
        self.dismiss_button = named(QPushButton("Dismiss"), "Dismiss problem")
        text = QVBoxLayout()
        text.addWidget(self.title)
        text.addWidget(self.what)
        text.addWidget(self.todo)
        row = QHBoxLayout(self)
        row.addLayout(text, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.action_button)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.dismiss_button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        self.action = ""
        self.details = ""
        self.action_button.clicked.connect(lambda: self.action_requested.emit(self.action))
        self.copy_button.clicked.connect(lambda: QApplication.clipboard().setText(self.details))
        self.dismiss_button.clicked.connect(self.clear)
        self.hide()

    def show_error(self, e: Explanation, detail: str = "") -> None:
        self._set_kind("error")
        self.title.setText(e.title)
        self.what.setText(e.what)
        self.todo.setText(f"What to do: {e.todo}" if e.todo else "")
        self.todo.setVisible(bool(e.todo))
        self.action = e.action
        self.action_button.setText(e.action_label)
        self.action_button.setAccessibleName(e.action_label or "Fix it")
        self.action_button.setVisible(bool(e.action_label))
        self.details = "\n".join(x for x in (e.title, e.what, e.todo, detail) if x)
        self.show()

    def show_notice(self, text: str, title: str = "Please note", action: str = "", label: str = "") -> None:
        self._set_kind("notice")
        self.title.setText(title)
        self.what.setText(text)
        self.todo.hide()
        self.action = action
        self.action_button.setText(label)
        self.action_button.setAccessibleName(label or "Fix it")
        self.action_button.setVisible(bool(action and label))
        self.details = f"{title}\n{text}"
        self.show()

    def _set_kind(self, kind: str) -> None:
        self.setProperty("kind", kind)
        self.setAccessibleDescription("error" if kind == "error" else "notice")
        self.style().unpolish(self)
        self.style().polish(self)

    def clear(self) -> None:
        self.hide()
        self.action = ""
