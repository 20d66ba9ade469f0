"""The speech recognisers a person can choose for live captions, and the Whisper models they use.

The one front for both front ends over the model store (speech/models.py): the Settings
dialog lists `engine_choices()` and `model_choices()`, pulls a model with `pull` (on the event
loop: the download runs in a worker thread, its progress comes back to the loop, and setting
`cancel` or cancelling the task stops it) and checks a choice with `validate`; `polyphone
models` uses the same catalogue, `pull_blocking`, `remove` and `verify`. Every failure is a
`ModelError`: what happened, what to do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..errors import UserFacingError
from ..speech import models as _store
from ..speech.models import (
    CATALOGUE,
    DEFAULT_MODEL,
    KnownModel,
    ModelError,
    ModelInfo,
    PullCancelled,
    hub_url,
    installed,
    models_dir,
    remove,
    verify,
)

__all__ = ["CATALOGUE", "DEFAULT_MODEL", "KnownModel", "ModelError", "ModelInfo", "PullCancelled",
           "hub_url", "installed", "models_dir", "remove", "verify", "EngineChoice", "ModelChoice",
           "engine_choices", "model_choices", "model_for", "validate", "pull", "pull_blocking", "megabytes"]

WHISPER = "whisper"
MB = 1_000_000
SETTINGS_PLACE = "Settings → Speech recognition"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EngineChoice:
    engine: str                 # config.TRANSCRIBERS: "pocketsphinx" | "whisper"
    label: str                  # for people
    lower_accuracy: bool
    takes_model: bool


@dataclass(frozen=True)
class ModelChoice:
    name: str
    size_mb: int                # about how much a pull downloads
    installed: bool             # every file is here
    partial: bool               # a pull that stopped part way (the next one resumes it)
    default: bool

    @property
    def label(self) -> str:
        state = "installed" if self.installed else "download not finished" if self.partial \
            else "not downloaded"
        return f"{self.name}{' (default)' if self.default else ''} — about {self.size_mb} MB — {state}"


_ENGINES = (
    EngineChoice("pocketsphinx", "pocketsphinx — offline, lower accuracy", True, False),
    EngineChoice(WHISPER, "Whisper — offline, more accurate (needs a model)", False, True),
)


def engine_choices() -> list[EngineChoice]:
    return list(_ENGINES)


def model_choices() -> list[ModelChoice]:
    """Every model of the catalogue, with what is on this computer (a few file stats)."""
    here = {m.name: m for m in installed()}
    return [ModelChoice(name, known.size_mb, name in here and here[name].complete,
                        name in here and not here[name].complete, name == DEFAULT_MODEL)
            for name, known in CATALOGUE.items()]


def model_for(engine: str, model: str | None) -> str | None:
    """The model to give the recogniser: the chosen one for Whisper (its default if none), none
    for an engine without models."""
    return ((model or "").strip() or DEFAULT_MODEL) if engine == WHISPER else None


def _in_settings(model: str, action: str) -> str:
    where = f"Pull it in {SETTINGS_PLACE}" if model in CATALOGUE else f"Choose a model in {SETTINGS_PLACE}"
    return f"{where}, or {action[:1].lower()}{action[1:]}" if action else f"{where}."


def validate(engine: str, model: str | None = None) -> UserFacingError | None:
    """Why captions with `engine` (and its `model`) cannot start now, or None when they can.

    Whisper needs its model on this computer (a finished pull, or a folder holding one); the
    action names the window's place to pull it as well as the command.
    """
    if engine not in config.TRANSCRIBERS:
        return ModelError(f'There is no speech recogniser called "{engine}".',
                          f"Choose one in {SETTINGS_PLACE}: {', '.join(config.TRANSCRIBERS)}.")
    name = model_for(engine, model)
    if name is None:
        return None
    try:
        _store.resolve(name)
    except ModelError as exc:
        return ModelError(exc.message, _in_settings(name, exc.action))
    return None


def pull_blocking(name: str, progress: Progress | None = None,
                  cancel: threading.Event | None = None) -> Path:
    """speech.models.pull in this thread: `progress(done, total)` from it; its folder."""
    return _store.pull(name, progress=progress, cancel=cancel)


class _ToLoop:
    """Progress from the download's thread to the loop: the latest figures, one callback queued
    at a time (a slow loop sees fewer, never stale, updates)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, progress: Progress) -> None:
        self.loop, self.progress = loop, progress
        self.latest: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:   # the download's thread
        with self.lock:
            queued, self.latest = self.latest is not None, (done, total)
        if not queued:
            self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self.lock:
            latest, self.latest = self.latest, None
        if latest is not None:
            self.progress(*latest)


async def pull(name: str, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> Path:
    """Pull a model of the catalogue without blocking the loop; its folder.

    `progress(done_bytes, total_bytes)` is called on this loop, the last time before this
    returns. Setting `cancel` stops the download within a chunk (PullCancelled: what arrived is
    kept and the next pull resumes it); cancelling the awaiting task sets it too. Every failure
    is a ModelError.
    """
    cancel = cancel if cancel is not None else threading.Event()
    relay = _ToLoop(asyncio.get_running_loop(), progress) if progress is not None else None
    try:
        return await asyncio.to_thread(_store.pull, name, relay, cancel)
    except asyncio.CancelledError:
        cancel.set()          # the thread stops at its next chunk
        raise


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"
