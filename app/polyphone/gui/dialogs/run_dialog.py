"""Run a caller script against the selected agent and watch its turns live.

Open a script (TOML; see the README's "Scripted runs"), press Run: the script plays
through a real call to the profile and variant chosen in the main window, with files
instead of sound devices. The timeline shows both waveforms and each turn's latency;
the table fills as turns are measured; the report folder opens when it is done. A run
and a live call never overlap: the bridge refuses one while the other is going.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...paths import resource
from ...runs.events import RunFinished, RunStarted, Said, TurnMark, TurnResult, WaveChunk
from ...runs.script import Script, ScriptError, load_script
from ...services.script_runs import RunProblem, RunSaved
from ..widgets.run_timeline import RunTimeline

COLUMNS = ("Turn", "Kind", "Latency", "Agent spoke", "Barge-in stop")


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} ms"


def _verdict(r: object) -> str:
    """A run that ended normally, and what its expectations came to."""
    checks = list(getattr(r, "expectations", [])) + [c for t in getattr(r, "turns", [])
                                                     for c in t.expectations]
    if not checks:
        return "The run ended normally."
    unmet = sum(1 for c in checks if not c["passed"])
    return ("The run ended normally; every expectation was met." if not unmet else
            f"The run ended normally, but {unmet} of {len(checks)} expectations were not met "
            "(see the report).")


class RunDialog(QDialog):
    def __init__(self, bridge, target: Callable[[], tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run a caller script")
        self.setAccessibleName("Run a caller script")
        self.bridge, self.target = bridge, target
        self.script: Script | None = None
        self.folder: str | None = None
        self.script_label = QLabel("No script open.")
        self.steps = QListWidget()
        self.steps.setAccessibleName("Script steps")
        self.steps.setMaximumHeight(110)
        self.status = QLabel("")
        self.status.setAccessibleName("Run status")
        self.status.setWordWrap(True)
        self.timeline = RunTimeline()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Turns")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.open_button = QPushButton("Open script…")
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.report_button = QPushButton("Open report folder")
        for b, slot in ((self.open_button, self.choose_script), (self.run_button, self.run),
                        (self.stop_button, bridge.stop_run), (self.report_button, self.open_report)):
            b.clicked.connect(slot)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        self.report_button.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.open_button, self.run_button, self.stop_button, self.report_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        for w in (self.script_label, self.steps):
            layout.addWidget(w)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.timeline, 2)
        layout.addWidget(self.table, 1)
        bridge.run_event.connect(self.on_event)
        bridge.busy_changed.connect(self._on_busy)
        self.resize(760, 620)

    # --- the script ----------------------------------------------------------------------

    def choose_script(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a caller script", str(resource("scripts")),
                                              "Caller scripts (*.toml)")
        if path:
            self.open_script(path)

    def open_script(self, path: str) -> bool:
        try:
            self.script = load_script(path)
        except ScriptError as exc:
            self.script = None
            self.steps.clear()
            self.script_label.setText(f"Cannot use {Path(path).name}.")
            self.status.setText(f"{exc.message} {exc.action}")
            self.run_button.setEnabled(False)
            return False
        self.script_label.setText(f"{self.script.name} — {Path(path).name}")
        self.steps.clear()
        self.steps.addItems([f"{n}. {s.describe()}" for n, s in enumerate(self.script.steps, 1)])
        profile, variant = self.target()
        self.status.setText(f"Runs against {profile}, {variant or 'default variant'} (the main window's "
                            "choice), with the script's WAVs as the microphone.")
        self.run_button.setEnabled(not self.bridge.busy)
        return True

    def run(self) -> None:
        if self.script is None:
            return
        profile, variant = self.target()
        self.timeline.clear()
        self.table.setRowCount(0)
        self.folder = None
        self.report_button.setEnabled(False)
        self.status.setText(f"Calling {profile}…")
        self.bridge.run_script(str(self.script.path), profile, variant)

    def open_report(self) -> None:
        if self.folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.folder))

    # --- progress ------------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        if isinstance(event, (WaveChunk, TurnMark, Said)):
            self.timeline.add(event)
        elif isinstance(event, TurnResult):
            self.timeline.add(event)
            self._add_row(event)
        elif isinstance(event, RunStarted):
            self.status.setText(f"Running “{event.script_name}” against {event.target_label}…")
        elif isinstance(event, RunFinished):
            r = event.result
            self.status.setText(_verdict(r) if r.ok else
                                f"The call failed: {(r.error or {}).get('message', 'it did not connect')} "
                                f"{(r.error or {}).get('action', '')}".strip())
        elif isinstance(event, RunSaved):
            self.folder = event.folder
            self.report_button.setEnabled(True)
            self.status.setText(self.status.text() + f" Report: {event.folder}")
        elif isinstance(event, RunProblem):
            self.status.setText(f"{event.message} {event.action}".strip())

    def _add_row(self, t: TurnResult) -> None:
        stop = ""
        if t.barged_in:
            stop = _ms(t.barge_in_stop_ms) if t.stopped_after_barge_in else "did not stop"
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate((str(t.turn), t.kind.replace("_", "-"), _ms(t.response_latency_ms),
                                    _ms(t.agent_speaking_ms), stop)):
            self.table.setItem(row, col, QTableWidgetItem(text))

    def _on_busy(self, busy: bool) -> None:
        running = busy and self.bridge.script_running
        self.run_button.setEnabled(not busy and self.script is not None)
        self.open_button.setEnabled(not busy)
        self.stop_button.setEnabled(running)
        if busy and not running and self.script is not None:
            self.status.setText("A call is running: the script can run after it.")
