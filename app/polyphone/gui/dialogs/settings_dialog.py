"""Settings: audio processing, recording, speech recognition, log level, theme. Edits the
Settings object on OK.

A model pull (the "Speech recognition" group, widgets/speech_settings.py) runs through
`services.speech_models.pull` on the event loop, its download in a worker thread, so the dialog
stays responsive; closing the dialog (OK, Cancel, Esc) stops it, keeping what arrived.
"""

from __future__ import annotations

import asyncio
import threading

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...config import LOG_LEVELS, THEMES, Settings
from ...errors import UserFacingError
from ...services import speech_models
from ..widgets.accessible import named
from ..widgets.speech_settings import SpeechSettings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.settings = settings
        self.pull_task: asyncio.Future | None = None   # a model pull under way
        self._cancel_pull = threading.Event()
        self._closed = False
        self._build_fields()
        self._build_buttons()
        box = QVBoxLayout(self)
        for w in (self._audio_group(), self._recording_group(), self.speech, self._display_group(),
                  self.problems, self.buttons):
            box.addWidget(w)
        self.browse.clicked.connect(self._browse)
        self.speech.pull_requested.connect(self._pull)
        self.speech.cancel_requested.connect(self._stop_pull)
        self.recording.toggled.connect(self._sync)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.load(settings)

    def _build_fields(self) -> None:
        self.echo = named(QCheckBox("&Echo cancellation"), "Echo cancellation")
        self.noise = named(QCheckBox("&Noise suppression"), "Noise suppression")
        self.gain = named(QCheckBox("Automatic &gain control"), "Automatic gain control")
        self.recording = named(QCheckBox("&Record calls (your voice left, the agent right)"), "Record calls")
        self.folder = named(QLineEdit(), "Recording folder")
        self.folder.setPlaceholderText(str(Settings().recordings_dir()))
        self.browse = named(QPushButton("&Browse…"), "Choose recording folder")
        self.log_level = named(QComboBox(), "Log level")
        for level in LOG_LEVELS:
            self.log_level.addItem(level.capitalize(), level)
        self.speech = SpeechSettings()
        self.theme = named(QComboBox(), "Theme")
        for theme in THEMES:
            self.theme.addItem({"system": "Same as the system"}.get(theme, theme.capitalize()), theme)
        self.problems = named(QLabel(), "Settings problems")
        self.problems.setStyleSheet("color: #d0433a;")
        self.problems.setWordWrap(True)

    def _build_buttons(self) -> None:
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        named(self.buttons.button(QDialogButtonBox.StandardButton.Ok), "Save settings")
        named(self.buttons.button(QDialogButtonBox.StandardButton.Cancel), "Cancel")

    def _audio_group(self) -> QGroupBox:
        audio = QGroupBox("Audio processing (applies at once, also during a call)")
        a = QVBoxLayout(audio)
        for box in (self.echo, self.noise, self.gain):
            a.addWidget(box)
        return audio

    def _recording_group(self) -> QGroupBox:
        rec = QGroupBox("Recording")
        r = QFormLayout(rec)
        r.addRow(self.recording)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse)
        folder_label = QLabel("&Folder")
        folder_label.setBuddy(self.folder)
        r.addRow(folder_label, folder_row)
        return rec

    def _display_group(self) -> QGroupBox:
        other = QGroupBox("Display")
        o = QFormLayout(other)
        o.addRow("&Log level", self.log_level)
        o.addRow("&Theme", self.theme)
        return other

    def load(self, s: Settings) -> None:
        self.echo.setChecked(s.echo_cancellation)
        self.noise.setChecked(s.noise_suppression)
        self.gain.setChecked(s.gain_control)
        self.recording.setChecked(s.recording)
        self.folder.setText(s.recording_folder)
        self.log_level.setCurrentIndex(max(0, self.log_level.findData(s.log_level)))
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        self.speech.load(s.transcriber, s.whisper_model)
        self._sync()

    def _sync(self, *_args) -> None:
        self.folder.setEnabled(self.recording.isChecked())
        self.browse.setEnabled(self.recording.isChecked())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Recording folder",
                                                  self.folder.text() or str(Settings().recordings_dir()))
        if folder:
            self.folder.setText(folder)

    # --- a model pull -----------------------------------------------------------------------------

    def _pull(self, name: str) -> None:
        if self.pull_task is not None and not self.pull_task.done():
            return
        self._cancel_pull = cancel = threading.Event()
        self.speech.pull_started(name)
        self.pull_task = asyncio.ensure_future(self._run_pull(name, cancel))

    async def _run_pull(self, name: str, cancel: threading.Event) -> None:
        problem: UserFacingError | None = None
        try:
            await speech_models.pull(name, self._progress, cancel)
        except UserFacingError as exc:
            problem = exc
        except Exception as exc:  # a bug of ours: said, not left as a stuck progress bar
            problem = UserFacingError(f"The download of {name} failed ({type(exc).__name__}: {exc}).",
                                      "Try again.")
        if not self._closed:
            self.speech.pull_ended(name, problem)

    def _stop_pull(self) -> None:
        self._cancel_pull.set()

    def _progress(self, done: int, total: int) -> None:
        if not self._closed:
            self.speech.show_progress(done, total)

    def done(self, result: int) -> None:
        """OK, Cancel, Esc or the window closing: a pull under way stops (what arrived is kept)."""
        self._closed = True
        self._stop_pull()
        super().done(result)

    # --- OK -----------------------------------------------------------------------------------------

    def save(self) -> None:
        engine, model = self.speech.choice()
        candidate = Settings(**{**vars(self.settings),
                                "transcriber": engine,
                                "whisper_model": model,
                                "echo_cancellation": self.echo.isChecked(),
                                "noise_suppression": self.noise.isChecked(),
                                "gain_control": self.gain.isChecked(),
                                "recording": self.recording.isChecked(),
                                "recording_folder": self.folder.text().strip(),
                                "log_level": self.log_level.currentData(),
                                "theme": self.theme.currentData()})
        problems = candidate.validate()
        if problems:
            self.problems.setText("\n".join(problems))
            return
        for key, value in vars(candidate).items():
            setattr(self.settings, key, value)
        self.accept()
