"""Call history: every call with its ids, result, turn latencies and recording (play, reveal)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
import time
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ... import repro
from ...history import CallRecord, History, HistoryError
from ..widgets.accessible import named

COLUMNS = ("Time", "Agent", "Variant", "Result", "Duration", "Turn latency", "Recording", "Session ID",
           "Call SID", "Error")
RECORDING = COLUMNS.index("Recording")


def _cells(r: CallRecord) -> list[str]:
    lat = sorted(r.turn_latencies_ms)
    latency = f"median {lat[len(lat) // 2]:.0f} ms ({len(lat)})" if lat else "—"
    error = f"{r.error_code}: {r.error_message}" if r.error_code else ""
    return [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at)), r.profile,
            r.variant or "default", r.result, f"{r.duration_s:.1f} s", latency,
            Path(r.recording_path).name if r.recording_path else "", r.session_id, r.call_sid, error]


class HistoryDialog(QDialog):
    def __init__(self, history: History, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Call history")
        self.setAccessibleName("Call history")
        self.history = history
        self.records: list[CallRecord] = []
        self.search = named(QLineEdit(), "Search what was said")
        self.search.setPlaceholderText("Search what was said…")
        self.search.setClearButtonEnabled(True)
        self.transcript = named(QPlainTextEdit(), "What was said on the selected call")
        self.transcript.setReadOnly(True)
        self.transcript.setMaximumHeight(120)
        self._build_table()
        self.status = named(QLabel(), "History status")
        self.status.setWordWrap(True)
        self._build_buttons()
        self._build_layout()
        self._connect()
        self.resize(1000, 480)
        self.reload()

    def _build_table(self) -> None:
        self.table = named(QTableWidget(0, len(COLUMNS)), "Calls")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

    def _build_buttons(self) -> None:
        self.play_button = named(QPushButton("&Play recording"), "Play recording")
        self.reveal_button = named(QPushButton("&Show in folder"), "Show recording in folder")
        self.copy_button = named(QPushButton("&Copy row"), "Copy call details")
        self.bundle_button = named(QPushButton("Save repro &bundle…"), "Save a repro bundle of this call")
        self.delete_button = named(QPushButton("&Delete"), "Delete call")
        self.refresh_button = named(QPushButton("&Refresh"), "Refresh history")
        self.close_button = named(QPushButton("Close"), "Close history")

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        for b in (self.play_button, self.reveal_button, self.copy_button, self.bundle_button,
                  self.delete_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.close_button)
        box = QVBoxLayout(self)
        box.addWidget(self.search)
        box.addWidget(self.table, 1)
        box.addWidget(self.transcript)
        box.addWidget(self.status)
        box.addLayout(row)

    def _connect(self) -> None:
        self.play_button.clicked.connect(self.play)
        self.reveal_button.clicked.connect(self.reveal)
        self.copy_button.clicked.connect(self.copy)
        self.bundle_button.clicked.connect(self.choose_bundle_path)
        self.delete_button.clicked.connect(self.delete)
        self.refresh_button.clicked.connect(self.reload)
        self.search.textChanged.connect(self.reload)
        self.close_button.clicked.connect(self.accept)
        self.table.itemSelectionChanged.connect(self._sync)

    def reload(self) -> None:
        try:
            text = self.search.text()
            self.records = self.history.list(text=text)
            found = f"{len(self.records)} call(s)" + \
                (f" in which “{text.strip()}” was said." if text.strip() else ".")
            self.status.setText(self.history.notice or found)
        except (HistoryError, sqlite3.Error, OSError) as exc:
            self.records = []
            self.status.setText(f"The history could not be read: {exc}")
        self.table.setRowCount(len(self.records))
        for i, r in enumerate(self.records):
            for j, text in enumerate(_cells(r)):
                item = QTableWidgetItem(text)
                if j == RECORDING and r.recording_path:
                    item.setToolTip(r.recording_path)
                elif j == len(COLUMNS) - 1 and text:
                    item.setToolTip(text)
                self.table.setItem(i, j, item)
        if self.records:
            self.table.selectRow(0)
        self._sync()

    def selected(self) -> CallRecord | None:
        row = self.table.currentRow()
        return self.records[row] if 0 <= row < len(self.records) else None

    def _sync(self) -> None:
        r = self.selected()
        has_file = bool(r and r.recording and r.recording.exists())
        self.play_button.setEnabled(has_file)
        self.reveal_button.setEnabled(has_file)
        self.copy_button.setEnabled(r is not None)
        self.bundle_button.setEnabled(r is not None)
        self.delete_button.setEnabled(r is not None)
        self.transcript.setPlainText(r.transcript if r and r.transcript else
                                     "No words were recognised on this call." if r else "")

    def choose_bundle_path(self) -> None:
        r = self.selected()
        if r is None:
            return
        name = f"polyphone-call-{time.strftime('%Y%m%d-%H%M%S', time.localtime(r.started_at))}.zip"
        path, _ = QFileDialog.getSaveFileName(self, "Save a repro bundle", str(Path.home() / name),
                                              "Zip archives (*.zip)")
        if path:
            self.save_bundle(Path(path))

    def save_bundle(self, path: Path) -> bool:
        """One .zip for a bug report: recording, stats, log, turn latencies, versions, ids."""
        r = self.selected()
        if r is None:
            return False
        turns = [{"turn": i + 1, "response_latency_ms": ms} for i, ms in enumerate(r.turn_latencies_ms)]
        report = {k: v for k, v in dataclasses.asdict(r).items() if k != "details"}
        try:
            repro.write_bundle(
                path, report=report, stats=r.details.get("stats", []), log=r.details.get("log", []),
                turns_csv=repro.table_csv(turns, ("turn", "response_latency_ms")),
                session_id=r.session_id or None, call_sid=r.call_sid or None, recording=r.recording,
                devices=r.details.get("devices"),
                extra_files={"warnings.json": json.dumps(r.details.get("warnings", []), indent=1)})
        except OSError as exc:
            self.status.setText(f"The bundle could not be saved: {exc.strerror or exc}. "
                                "Choose another folder.")
            return False
        missing = "" if r.recording and r.recording.exists() else " (this call has no recording)"
        old = "" if r.details else " (a call from before Polyphone kept stats and logs per call)"
        self.status.setText(f"Saved {path}{missing}{old}.")
        return True

    def play(self) -> None:
        r = self.selected()
        if r and r.recording and r.recording.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(r.recording)))

    def reveal(self) -> None:
        r = self.selected()
        if not (r and r.recording and r.recording.exists()):
            return
        path = str(r.recording)
        if sys.platform == "darwin":
            QProcess.startDetached("open", ["-R", path])
        elif sys.platform == "win32":
            QProcess.startDetached("explorer", [f"/select,{path}"])
        else:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(r.recording.parent)))

    def copy(self) -> None:
        r = self.selected()
        if r is not None:
            text = "\n".join(f"{h}: {v}" for h, v in zip(COLUMNS, _cells(r)))
            if r.turn_latencies_ms:
                text += "\nTurn latencies (ms): " + ", ".join(f"{x:.0f}" for x in r.turn_latencies_ms)
            if r.recording_path:
                text += f"\nRecording file: {r.recording_path}"
            QApplication.clipboard().setText(text)

    def delete(self) -> None:
        r = self.selected()
        if r is not None and r.id is not None:
            self.history.delete(r.id)
            self.reload()


