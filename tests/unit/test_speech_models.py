"""The captions' recogniser choice (services/speech_models.py, services/captions.py): what can be
chosen, whether a choice works now, a pull on the event loop, and a changed choice ending the
running recognisers. The hub is helpers.tiny_whisper.Hub on 127.0.0.1; the recognisers are real
`polyphone --asr-worker` processes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import helpers.tiny_whisper as tw
from polyphone import config
from polyphone.services import speech_models
from polyphone.services.app_events import CaptionsStatus
from polyphone.services.captions import LiveCaptions
from polyphone.speech import models
from polyphone.speech.transcribe import ENGINES

tiny_whisper = tw.tiny_whisper   # the fixtures (see helpers/tiny_whisper.py)
model_hub = tw.model_hub
model_cache = tw.model_cache

cache = pytest.fixture(autouse=True, name="cache")(lambda model_cache: model_cache)   # each test: its own

hub = tw.hub


def choice(name: str) -> speech_models.ModelChoice:
    return next(m for m in speech_models.model_choices() if m.name == name)


def test_the_choices_match_the_engines_and_the_catalogue() -> None:
    engines = speech_models.engine_choices()
    assert [e.engine for e in engines] == list(ENGINES) == list(config.TRANSCRIBERS)
    sphinx = engines[0]
    assert sphinx.lower_accuracy and "lower accuracy" in sphinx.label and not sphinx.takes_model
    assert config.Settings().whisper_model == config.WHISPER_MODEL == models.DEFAULT_MODEL
    choices = speech_models.model_choices()
    assert [m.name for m in choices] == list(models.CATALOGUE)
    base = next(m for m in choices if m.name == models.DEFAULT_MODEL)
    assert base.default and not base.installed and not base.partial
    assert base.label == "base.en (default) — about 145 MB — not downloaded"


def test_validate_says_whether_a_choice_works_now(tiny_whisper: Path) -> None:
    assert speech_models.validate("pocketsphinx") is None
    assert speech_models.validate("pocketsphinx", "no-such-model") is None   # it takes no model
    assert speech_models.validate("whisper", str(tiny_whisper)) is None      # a folder of one's own
    problem = speech_models.validate("whisper", "tiny")
    assert isinstance(problem, models.ModelError)
    assert problem.message == "The speech model tiny is not on this computer yet."
    assert problem.action.startswith("Pull it in Settings → Speech recognition, or run "
                                     "`polyphone models pull tiny` (about 75 MB)")
    assert "base.en is not on this computer" in str(speech_models.validate("whisper", ""))  # the default
    (models.models_dir() / "tiny").mkdir(parents=True)                       # a pull that stopped
    assert "has not finished" in speech_models.validate("whisper", "tiny").message
    assert "Choose a model in Settings" in speech_models.validate("whisper", "huge").action
    unknown = speech_models.validate("vosk")
    assert unknown is not None and "no speech recogniser called" in unknown.message


async def test_a_pull_reports_progress_on_the_loop_and_can_be_cancelled(hub: tw.Hub) -> None:
    loop_thread, seen = threading.get_ident(), []
    hub.delay = 0.02
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        seen.append((threading.get_ident(), done, total))
        if done > 0:
            cancel.set()
    with pytest.raises(speech_models.PullCancelled):
        await speech_models.pull("tiny", progress, cancel)
    assert seen and {t for t, _, _ in seen} == {loop_thread}
    assert not choice("tiny").installed and choice("tiny").partial and "not finished" in choice("tiny").label
    hub.delay = 0.0
    seen.clear()
    folder = await speech_models.pull("tiny", progress=lambda d, t: seen.append((d, t)))
    total = sum(len(d) for d in hub.files.values())
    assert folder == models.models_dir() / "tiny" and seen[-1] == (total, total)
    assert choice("tiny").installed and speech_models.validate("whisper", "tiny") is None


def asr_workers() -> list[int]:
    """This process's `polyphone --asr-worker` children."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(stat[1]) == os.getpid() and b"--asr-worker" in cmdline:
            found.append(int(entry))
    return found


async def test_a_changed_choice_ends_the_running_recognisers() -> None:
    events: list = []
    captions = LiveCaptions(events.append)
    media = SimpleNamespace(source=SimpleNamespace(hooks=[]), sink=SimpleNamespace(hooks=[]))
    try:
        await captions.start(media)
        assert captions.running and len(media.source.hooks) == len(media.sink.hooks) == 1
        assert len(asr_workers()) == 2
        assert not await captions.configure("pocketsphinx", "ignored")   # the same choice: kept
        assert captions.running and len(asr_workers()) == 2
        assert await captions.configure("whisper", "tiny")
        assert (captions.engine, captions.model) == ("whisper", "tiny")
        assert not captions.running and asr_workers() == []
        assert media.source.hooks == [] and media.sink.hooks == []
        await captions.start(media)              # tiny was never pulled: said, nothing started
        problem = [e for e in events if isinstance(e, CaptionsStatus) and e.problem]
        assert problem and problem[-1].engine == ""
        assert "tiny is not on this computer" in problem[-1].problem
        assert "Pull it in Settings → Speech recognition" in problem[-1].problem
        assert not captions.running and asr_workers() == []
    finally:
        await captions.close()
    assert asr_workers() == []
