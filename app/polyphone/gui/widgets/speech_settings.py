"""Settings' "Speech recognition" group: the captions' recogniser, the Whisper model, pulling one.

The recogniser (pocketsphinx, offline and of lower accuracy; or Whisper) and the model come
from `services.speech_models`, with what is on this computer. Pull asks for the chosen model
(`pull_requested`: the dialog runs the download) and shows its progress in megabytes; Cancel
download stops it (`cancel_requested`); Remove deletes the model. The message line says what
to do when the choice cannot work yet, and what went wrong.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ...errors import UserFacingError
from ...services import speech_models
from .accessible import named

STEPS = 1000          # the progress bar's range: tenths of a percent
ERROR_STYLE = "color: #d0433a;"


class SpeechSettings(QGroupBox):
    pull_requested = Signal(str)          # a model's name
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Speech recognition (live captions)", parent)
        self.setAccessibleName("Speech recognition")
        self.pulling = ""                 # the model being pulled
        self._build()
        self.engine.currentIndexChanged.connect(self._sync)
        self.model.currentIndexChanged.connect(self._sync)
        self.pull_button.clicked.connect(self._pull)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.remove_button.clicked.connect(self._remove)

    def _build(self) -> None:
        self.engine = named(QComboBox(), "Speech recogniser",
                            tip="What turns both sides' speech into captions, on this computer")
        for choice in speech_models.engine_choices():
            self.engine.addItem(choice.label, choice.engine)
        self.model = named(QComboBox(), "Whisper model", tip="The Whisper model the captions use")
        self.pull_button = named(QPushButton("&Pull"), "Pull model",
                                 tip="Download this model (a download that stopped resumes)")
        self.remove_button = named(QPushButton("Remo&ve"), "Remove model", tip="Delete this model's files")
        self.progress = named(QProgressBar(), "Model download progress")
        self.progress.setRange(0, STEPS)
        self.cancel_button = named(QPushButton("Cancel do&wnload"), "Cancel download")
        self.message = named(QLabel(), "Speech recognition message")
        self.message.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Re&cogniser", self.engine)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.pull_button)
        model_row.addWidget(self.remove_button)
        model_label = QLabel("Whisper mo&del")
        model_label.setBuddy(self.model)
        form.addRow(model_label, model_row)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        form.addRow(progress_row)
        form.addRow(self.message)
        for w in (self.progress, self.cancel_button):
            w.hide()

    # --- the choice ---------------------------------------------------------------------------

    def load(self, engine: str, model: str) -> None:
        self.engine.setCurrentIndex(max(0, self.engine.findData(engine)))
        self.refresh(model or speech_models.DEFAULT_MODEL)

    def choice(self) -> tuple[str, str]:
        """The recogniser and the Whisper model chosen."""
        return self.engine.currentData(), self.model.currentData() or speech_models.DEFAULT_MODEL

    def refresh(self, select: str | None = None) -> None:
        """The catalogue again, with what is on this computer now; `select` (or the current
        model) stays chosen, a folder of the person's own included."""
        select = select or self.model.currentData() or speech_models.DEFAULT_MODEL
        self.model.blockSignals(True)
        self.model.clear()
        for m in speech_models.model_choices():
            self.model.addItem(m.label, m.name)
        if self.model.findData(select) < 0:      # a folder named in settings.toml: kept
            self.model.addItem(f"{select} — a folder of your own", select)
        self.model.setCurrentIndex(self.model.findData(select))
        self.model.blockSignals(False)
        self._sync()

    def _current(self) -> speech_models.ModelChoice | None:
        name = self.model.currentData()
        return next((m for m in speech_models.model_choices() if m.name == name), None)

    def _sync(self, *_args) -> None:
        current, busy = self._current(), bool(self.pulling)
        self.model.setEnabled(not busy)
        here = current is not None and (current.installed or current.partial)
        self.pull_button.setEnabled(not busy and current is not None and not current.installed)
        self.remove_button.setEnabled(not busy and here)
        if not busy:
            self._say(self._advice(current))

    def _advice(self, current: speech_models.ModelChoice | None) -> str | UserFacingError:
        engine, model = self.choice()
        if (current is not None and current.installed) or engine != "whisper":
            return ""
        if current is not None:
            return (f"The download of {current.name} has not finished: press Pull to resume it."
                    if current.partial else f"{current.name} is not on this computer yet: press Pull "
                    f"to download it (about {current.size_mb} MB).")
        return speech_models.validate(engine, model) or ""

    def _say(self, what: str | UserFacingError) -> None:
        error = isinstance(what, UserFacingError)
        self.message.setText(str(what))
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setVisible(bool(str(what)))

    # --- pulling and removing -------------------------------------------------------------------

    def _pull(self) -> None:
        name = self.model.currentData()
        if name and not self.pulling:
            self.pull_requested.emit(name)

    def pull_started(self, name: str) -> None:
        self.pulling = name
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        for w in (self.progress, self.cancel_button):
            w.show()
        self._say(f"Downloading {name}…")
        self._sync()

    def show_progress(self, done: int, total: int) -> None:
        if total <= 0:
            return
        self.progress.setValue(round(STEPS * min(done, total) / total))
        self.progress.setFormat(f"{speech_models.megabytes(done)} of {speech_models.megabytes(total)} (%p%)")

    def pull_ended(self, name: str, problem: UserFacingError | None) -> None:
        self.pulling = ""
        for w in (self.progress, self.cancel_button):
            w.hide()
        self.refresh()
        if isinstance(problem, speech_models.PullCancelled):
            self._say(f"The download of {name} was stopped; what arrived is kept: press Pull to resume it.")
        elif problem is not None:
            self._say(problem)
        else:
            self._say(f"{name} is ready.")

    def _remove(self) -> None:
        name = self.model.currentData()
        try:
            freed = speech_models.remove(name)
        except speech_models.ModelError as exc:
            self.refresh()
            self._say(exc)
            return
        self.refresh()
        self._say(f"Removed {name} ({speech_models.megabytes(freed)} freed).")
