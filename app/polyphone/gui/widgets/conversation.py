"""The conversation: who said what and when (live captions of both sides), the agent's
response time on each of its replies, and whether the agent is speaking now.

One row per utterance (widgets/transcript.py decides which); rows are selectable and copy
as text (Ctrl+C, or the context menu); the list follows the newest row unless the person
has scrolled up to read.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeyEvent, QKeySequence, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .accessible import named
from .transcript import Change, Transcript

AT, WHO, SAID = range(3)
COLORS = {"caller": "#3a7bd5", "agent": "#b0568f"}
EMPTY = "What you and the agent say shows here during a call."
EMPTY_OFF = "Captions are off. The agent's response times show here during a call."
FOLLOW_SLACK_PX = 4


def muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setWordWrap(True)
    return label


class ConversationRows(QTableWidget):
    """The rows: At | Who | Said, wrapped; Ctrl+C copies the selected rows as lines."""

    def __init__(self, copy_lines, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self._copy_lines = copy_lines      # rows -> text
        self.empty_text = EMPTY
        self.setHorizontalHeaderLabels(["At", "Who", "Said"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(AT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(WHO, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(SAID, QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.verticalHeader().hide()
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setWordWrap(True)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for text, rows in (("Copy", self.selected_rows), ("Copy all", lambda: list(range(self.rowCount())))):
            action = QAction(text, self)
            action.triggered.connect(lambda _checked=False, rows=rows: self.copy(rows()))
            self.addAction(action)

    def selected_rows(self) -> list[int]:
        return sorted({index.row() for index in self.selectionModel().selectedRows()})

    def copy(self, rows: list[int]) -> None:
        if rows:
            QApplication.clipboard().setText(self._copy_lines(rows))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy(self.selected_rows())
            event.accept()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(event)
        if self.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            painter.end()


class ConversationPane(QGroupBox):
    captions_toggled = Signal(bool)      # the person switched captions on or off

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Conversation", parent)
        self.setAccessibleName("Conversation")
        self.transcript = Transcript()
        self.t0: float | None = None      # monotonic seconds when the call connected
        self.captions = named(QCheckBox("Captions"), "Captions",
                              tip="Show what you and the agent say, as text, during calls")
        self.captions.setChecked(True)
        self.engine = named(muted(QLabel("")), "Captions engine")
        self.engine.hide()
        self.speaking = named(QLabel("● Agent speaking…"), "Agent speaking")
        self.speaking.setProperty("pill", "good")
        policy = self.speaking.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.speaking.setSizePolicy(policy)
        self.speaking.hide()
        self.problem = named(muted(QLabel("")), "Captions problem")
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # what to do
        self.problem.hide()
        self.rows = named(ConversationRows(self._lines), "Conversation rows",
                          "One row per utterance: when, who, and what was said",
                          object_name="conversationRows")
        self._layout()
        self._follow = True
        bar = self.rows.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range)
        self.captions.toggled.connect(self._on_captions)

    def _layout(self) -> None:
        header = QHBoxLayout()
        header.addWidget(self.captions)
        header.addStretch(1)
        header.addWidget(self.speaking)
        box = QVBoxLayout(self)
        box.addLayout(header)
        box.addWidget(self.engine)
        box.addWidget(self.problem)
        box.addWidget(self.rows, 1)

    # --- the call --------------------------------------------------------------------------

    def reset(self) -> None:
        """A new call: no rows, no start time, nobody speaking."""
        self.transcript.clear()
        self.rows.setRowCount(0)
        self.t0 = None
        self._follow = True
        self.set_agent_speaking(False)

    def call_started(self, t0: float) -> None:
        """The call connected at monotonic `t0`: times show from here."""
        self.t0 = t0
        for i in range(len(self.transcript.rows)):
            self._draw(i)

    def add_caption(self, caption: Any) -> None:
        """A `services.app_events.Caption`, partial or final."""
        change = self.transcript.caption(caption)
        if change is not None:
            self._apply(change)

    def add_latency(self, turn: int, latency_ms: float, now: float | None = None) -> None:
        """The agent's response time for a turn (the bridge's `turn_latency`), arriving now."""
        self._apply(self.transcript.latency(turn, latency_ms, time.monotonic() if now is None else now))

    def on_levels(self, _in_dbfs: float, _out_dbfs: float, _in_speaking: bool, out_speaking: bool) -> None:
        self.set_agent_speaking(out_speaking)

    def set_agent_speaking(self, speaking: bool) -> None:
        if speaking == self.speaking.isHidden():
            self.speaking.setVisible(speaking)

    @property
    def agent_speaking(self) -> bool:
        return not self.speaking.isHidden()

    # --- captions on/off and their engine ------------------------------------------------------

    def set_captions_on(self, on: bool) -> None:
        """Show the setting without telling anyone (at start-up, or after the settings dialog)."""
        self.captions.blockSignals(True)
        self.captions.setChecked(on)
        self.captions.blockSignals(False)
        self._show_captions_state(on)

    def _on_captions(self, on: bool) -> None:
        self._show_captions_state(on)
        self.captions_toggled.emit(on)

    def _show_captions_state(self, on: bool) -> None:
        self.rows.empty_text = EMPTY if on else EMPTY_OFF
        self.rows.viewport().update()

    def set_status(self, status: Any) -> None:
        """A `services.app_events.CaptionsStatus`: the recogniser's label, or why there is none."""
        self.engine.setText(f"Captions by {status.engine}" if status.engine else "")
        self.engine.setVisible(bool(status.engine))
        self.problem.setText(status.problem)
        self.problem.setVisible(bool(status.problem))

    # --- rows ----------------------------------------------------------------------------------

    def _apply(self, change: Change) -> None:
        if change.removed:
            self.rows.removeRow(change.index)
            return
        if change.moved_from is not None:
            self.rows.removeRow(change.moved_from)
            self.rows.insertRow(change.index)
        elif change.inserted:
            self.rows.insertRow(change.index)
        self._draw(change.index)

    def _draw(self, i: int) -> None:
        t, row = self.transcript, self.transcript.rows[i]
        spoken = t.spoken(i, self.t0)
        for column, text in ((AT, t.when(i, self.t0)), (WHO, row.who_text()), (SAID, t.said(i))):
            item = self.rows.item(i, column)
            if item is None:
                item = QTableWidgetItem()
                self.rows.setItem(i, column, item)
            item.setText(text)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, spoken)
            item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._style(i, row)

    def _style(self, i: int, row: Any) -> None:
        who = self.rows.item(i, WHO)
        font = QFont(who.font())
        font.setBold(True)
        who.setFont(font)
        who.setForeground(QColor(COLORS.get(row.who, "#808080")))
        if row.turn is not None:
            who.setToolTip(f"Turn {row.turn}: the agent began {row.latency_ms:.0f} ms after you stopped")
        said = self.rows.item(i, SAID)
        font = QFont(said.font())
        font.setItalic(not row.final)
        said.setFont(font)
        said.setData(Qt.ItemDataRole.ForegroundRole,
                     None if row.final else self.palette().color(QPalette.ColorRole.PlaceholderText))

    def _lines(self, rows: list[int]) -> str:
        return "\n".join(self.transcript.line(i, self.t0) for i in rows)

    def accessible_text(self, i: int) -> str:
        return self.rows.item(i, SAID).data(Qt.ItemDataRole.AccessibleTextRole)

    def row_texts(self, i: int) -> tuple[str, str, str]:
        return tuple(self.rows.item(i, c).text() for c in (AT, WHO, SAID))  # type: ignore[return-value]

    # --- following the newest row --------------------------------------------------------------

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.rows.verticalScrollBar().maximum() - FOLLOW_SLACK_PX

    def _on_range(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.rows.verticalScrollBar().setValue(maximum)

