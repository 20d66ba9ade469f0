"""The event log: timestamped lines, filterable by level, source and text; copyable; never a token."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...services.log_entry import LEVELS, LogEntry, level_rank
from ...services.redact import Redactor
from .accessible import named

MAX_ENTRIES = 5000
ALL_SOURCES = "All sources"


class EventLog(QWidget):
    def __init__(self, parent: QWidget | None = None, redact: Redactor | None = None) -> None:
        super().__init__(parent)
        self.redact = redact or Redactor()
        self.entries: list[LogEntry] = []
        self.level_box = named(QComboBox(), "Minimum log level")
        for level in LEVELS:
            self.level_box.addItem(level.capitalize() + (" and above" if level != "error" else ""), level)
        self.level_box.setCurrentIndex(1)
        self.source_box = named(QComboBox(), "Log source filter")
        self.source_box.addItem(ALL_SOURCES, "")
        self.search = named(QLineEdit(), "Log text filter")
        self.search.setPlaceholderText("Filter text…")
        self.search.setClearButtonEnabled(True)
        self.copy_button = named(QPushButton("Copy"), "Copy log", tip="Copy the lines shown to the clipboard")
        self.clear_button = named(QPushButton("Clear"), "Clear log")
        self.text = named(QPlainTextEdit(), "Event log", object_name="eventLogText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setMaximumBlockCount(MAX_ENTRIES)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        bar = QHBoxLayout()
        bar.addWidget(self.level_box)
        bar.addWidget(self.source_box)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.clear_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(bar)
        box.addWidget(self.text)
        self.level_box.currentIndexChanged.connect(self._refilter)
        self.source_box.currentIndexChanged.connect(self._refilter)
        self.search.textChanged.connect(self._refilter)
        self.copy_button.clicked.connect(self.copy)
        self.clear_button.clicked.connect(self.clear)

    def set_min_level(self, level: str) -> None:
        index = self.level_box.findData(level)
        if index >= 0:
            self.level_box.setCurrentIndex(index)

    def add(self, entry: LogEntry) -> None:
        entry = LogEntry(entry.wall, entry.level, entry.source, self.redact(entry.text))
        self.entries.append(entry)
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[: len(self.entries) - MAX_ENTRIES]
        if self.source_box.findData(entry.source) < 0:
            self.source_box.addItem(entry.source, entry.source)
        if self._shown(entry):
            self.text.appendPlainText(entry.format())

    def _shown(self, e: LogEntry) -> bool:
        if level_rank(e.level) < level_rank(self.level_box.currentData()):
            return False
        source = self.source_box.currentData()
        if source and e.source != source:
            return False
        needle = self.search.text().strip().lower()
        return not needle or needle in e.text.lower() or needle in e.source

    def visible_lines(self) -> list[str]:
        return [e.format() for e in self.entries if self._shown(e)]

    def _refilter(self, *_args) -> None:
        self.text.setPlainText("\n".join(self.visible_lines()))
        self.text.moveCursor(self.text.textCursor().MoveOperation.End)

    def copy(self) -> None:
        QApplication.clipboard().setText("\n".join(self.visible_lines()))

    def clear(self) -> None:
        self.entries.clear()
        self.text.clear()
