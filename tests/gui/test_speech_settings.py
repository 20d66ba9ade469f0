"""Settings → Speech recognition: choosing the captions' recogniser and pulling a Whisper model
from the dialog, for real: the hub is helpers.tiny_whisper.Hub on 127.0.0.1 serving a real (tiny,
random) faster-whisper model, the download runs in a worker thread under the qasync loop."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

import helpers.tiny_whisper as tw
from helpers.qt_waits import until
from polyphone import config
from polyphone.services import speech_models
from polyphone.speech import models

tiny_whisper = tw.tiny_whisper   # the fixtures (see helpers/tiny_whisper.py)
model_hub = tw.model_hub
model_cache = tw.model_cache

hub = tw.hub


def choose(combo, data: str) -> None:
    combo.setCurrentIndex(combo.findData(data))
    assert combo.currentData() == data


def test_pull_a_model_in_settings_and_caption_with_it(make_window, qloop, qtbot, hub: tw.Hub) -> None:
    w = make_window()
    d = w.open_settings()
    s = d.speech
    assert s.engine.currentData() == "pocketsphinx" and "lower accuracy" in s.engine.currentText()
    assert s.model.currentData() == models.DEFAULT_MODEL and s.message.isHidden()
    choose(s.engine, "whisper")
    choose(s.model, "tiny")
    assert "not downloaded" in s.model.currentText() and "about 75 MB" in s.model.currentText()
    assert "tiny is not on this computer yet: press Pull" in s.message.text()
    assert s.pull_button.isEnabled() and not s.remove_button.isEnabled() and s.progress.isHidden()
    values: list[int] = []
    s.progress.valueChanged.connect(values.append)
    hub.delay = 0.01                     # ~35 chunks of 64 KiB: the bar moves while the loop runs on

    async def pull() -> None:
        qtbot.mouseClick(s.pull_button, Qt.MouseButton.LeftButton)
        assert s.progress.isVisible() and s.cancel_button.isVisible() and not s.model.isEnabled()
        await until(lambda: 0 < s.progress.value() < s.progress.maximum(), timeout=10)
        assert " MB of " in s.progress.text()
        await d.pull_task
    qloop.run(pull())
    assert values[-1] == s.progress.maximum() and values == sorted(values) and len(values) > 2
    assert s.progress.isHidden() and s.message.text() == "tiny is ready."
    assert s.model.currentData() == "tiny" and s.model.currentText().endswith("— installed")
    assert not s.pull_button.isEnabled() and s.remove_button.isEnabled()
    assert models.verify("tiny") == []
    d.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    saved = config.SettingsStore(w.settings_store.path).load()
    assert (saved.transcriber, saved.whisper_model) == ("whisper", "tiny")
    captions = w.bridge.phone.captions
    qloop.run(until(lambda: (captions.engine, captions.model) == ("whisper", "tiny")))
    assert speech_models.validate(captions.engine, captions.model) is None


def test_cancel_and_closing_stop_a_pull_without_a_finished_model(qtbot, qloop, hub: tw.Hub) -> None:
    from polyphone.gui.dialogs.settings_dialog import SettingsDialog

    settings = config.Settings(transcriber="whisper", whisper_model="tiny")
    d = SettingsDialog(settings)
    qtbot.addWidget(d)
    d.show()
    s = d.speech
    assert s.model.currentData() == "tiny" and s.engine.currentData() == "whisper"
    hub.delay = 0.05                     # ~2 s for the whole model: time to stop it part way

    async def pull_then(stop) -> None:
        qtbot.mouseClick(s.pull_button, Qt.MouseButton.LeftButton)
        await until(lambda: s.progress.value() > 0, timeout=10)
        stop()
        await d.pull_task
    qloop.run(pull_then(lambda: qtbot.mouseClick(s.cancel_button, Qt.MouseButton.LeftButton)))
    assert "was stopped" in s.message.text() and "press Pull to resume it" in s.message.text()
    assert s.progress.isHidden() and s.pull_button.isEnabled() and s.model.isEnabled()
    assert "download not finished" in s.model.currentText()
    qloop.run(pull_then(d.reject))       # closing the dialog during a pull stops it too
    assert d.result() == d.DialogCode.Rejected
    assert not (models.models_dir() / "tiny" / models.MANIFEST).exists()
    assert [(m.name, m.complete) for m in models.installed()] == [("tiny", False)]
    assert speech_models.validate("whisper", "tiny") is not None
    assert settings == config.Settings(transcriber="whisper", whisper_model="tiny")   # nothing saved
