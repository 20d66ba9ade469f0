"""The audio side of a call, as the application sees it: one small port, several adapters.

- `default_media_factory` builds `audio.pipeline.AudioPipeline` (microphone,
  speaker, processing, recording) when that module is there; otherwise
  `SilentMedia` (silence out, the agent's audio read and dropped) with a note
  saying so. Tests pass their own factory.
- `InputMeter` drives the microphone meter while no call is running.
- `run_check` runs the microphone / speaker test of `audio.check` if present.
Nothing here imports Qt; `phone.Phone` calls all of it on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Callable, Protocol

from ..audio.files import NullSink, SilenceSource
from ..audio.settings import AudioSettings
from ..config import Settings
from ..engine.events import LogLine
from ..engine.ports import AudioSink

EventSink = Callable[[Any], None]


class CallMedia(Protocol):
    """What a call needs from its audio (AudioPipeline has this shape)."""

    source: Any          # aiortc MediaStreamTrack: what we send
    sink: AudioSink      # where the agent's audio goes

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def set_muted(self, muted: bool) -> None: ...
    def set_volume(self, volume: float) -> None: ...
    def configure(self, **kwargs: bool) -> None: ...


def audio_settings(settings: Settings, record_path: Path | None = None) -> AudioSettings:
    """The audio of a call from the person's Settings."""
    return AudioSettings(
        input_device=settings.input_device or None, output_device=settings.output_device or None,
        echo_cancellation=settings.echo_cancellation, noise_suppression=settings.noise_suppression,
        gain_control=settings.gain_control, volume=settings.volume, record_path=record_path)


MediaFactory = Callable[[AudioSettings, EventSink], CallMedia]


class SilentMedia:
    """Sends silence and drops what arrives: calls work without a sound card."""

    def __init__(self, on_event: EventSink, note: str = "") -> None:
        self.source = SilenceSource()
        self.sink: AudioSink = NullSink()
        self.note = note
        self._on_event = on_event
        self.muted = False
        self.volume = 1.0

    async def start(self) -> None:
        if self.note:
            self._on_event(LogLine("warning", "audio", self.note))

    async def stop(self) -> None:
        self.source.stop()

    def set_muted(self, muted: bool) -> None:
        self.muted = muted

    def set_volume(self, volume: float) -> None:
        self.volume = volume

    def configure(self, **kwargs: bool) -> None:
        pass


def _load_pipeline() -> tuple[Any, str]:
    try:
        from ..audio.pipeline import AudioPipeline
    except (ImportError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return AudioPipeline, ""


def pipeline_problem() -> str:
    """Empty when the real audio pipeline can be used, else why not."""
    return _load_pipeline()[1]


def default_media_factory(options: AudioSettings, on_event: EventSink) -> CallMedia:
    pipeline, problem = _load_pipeline()
    if pipeline is None:
        return SilentMedia(on_event, "The audio pipeline is not available in this build "
                                     f"({problem}); this call sends silence.")
    return pipeline(options, on_event)


class InputMeter:
    """The chosen microphone's level while idle, about 10 times a second.

    `start` and `stop` are serialised: a stop that arrives while a stream is still opening
    (in a worker thread) waits for it and closes it, so no stream is left running. After
    `close()` nothing opens a stream again.
    """

    def __init__(self, on_level: Callable[[float], None], interval: float = 0.1) -> None:
        self._on_level = on_level
        self._interval = interval
        self._capture: Any = None
        self._task: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None
        self.closed = False
        self.device_id: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def start(self, device_id: str | None) -> str:
        """Empty on success; otherwise why the meter cannot run (in words)."""
        async with self._guard():
            await self._stop()
            if self.closed:
                return ""
            try:
                from ..audio.analysis import Meter
                from ..audio.capture import Capture
            except (ImportError, OSError) as exc:
                return f"The microphone meter is not available ({type(exc).__name__})."
            capture = Capture(device_id)
            try:
                await asyncio.to_thread(capture.start)
            except Exception as exc:
                return getattr(exc, "message", None) or f"The microphone could not be opened ({exc})."
            self._capture, self.device_id = capture, device_id
            self._task = asyncio.ensure_future(self._poll(capture, Meter()))
            return ""

    async def _poll(self, capture: Any, meter: Any) -> None:
        while True:
            await asyncio.sleep(self._interval)
            samples = capture.take()
            if len(samples):
                self._on_level(meter.feed(samples))

    async def stop(self) -> None:
        async with self._guard():
            await self._stop()

    async def close(self) -> None:
        self.closed = True
        await self.stop()

    async def _stop(self) -> None:
        """Whatever happened to the poll task, the stream is closed (a PortAudio stream left
        open and later garbage-collected under its running callback crashes the process)."""
        task, capture = self._task, self._capture
        self._task = self._capture = None
        try:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finally:
            if capture is not None:
                await asyncio.to_thread(capture.stop)


async def run_check(kind: str, device_id: str | None) -> str:
    """The microphone test (kind "input") or speaker tone ("output"), in words."""
    try:
        from ..audio import check
    except (ImportError, OSError):
        return "The audio check is not available in this build."
    try:
        if kind == "input":
            result = await check.mic_test(device_id, 3.0)
        else:
            result = await check.speaker_tone(device_id)
    except Exception as exc:
        return getattr(exc, "message", None) or f"The test failed: {exc}"
    return describe_check(result)


def describe_check(result: Any) -> str:
    for attr in ("summary", "message", "text"):
        value = getattr(result, attr, None)
        if isinstance(value, str) and value:
            return value
    return str(result) if result is not None else "Done."


def list_devices() -> tuple[list[Any], list[Any]]:
    """(inputs, outputs); blocking (runs pactl or PortAudio): call it in a worker thread."""
    from ..audio import devices

    found = devices.list_devices()
    return ([d for d in found if d.kind == devices.INPUT],
            [d for d in found if d.kind == devices.OUTPUT])


WARM_MODULES = ("polyphone.audio.pipeline", "polyphone.audio.check", "polyphone.localgw.server",
                "livekit.rtc")
# The rest a call would otherwise import on the loop: aiortc's DTLS and SRTP set-up
# (cryptography), the echo watch (numpy.fft), the echo canceller's resources (livekit). Under
# PySide6 each import costs more than usual (shiboken's import hook reads the module's source);
# with a cold disk cache they stalled the first call's loop for 450-600 ms. The window imports
# them in a worker thread once it is shown (~50 ms warm, ~150 ms cold): not on the way to the
# first paint. tests/gui/test_bridge_audio.py fails when a call imports anything after both.
CALL_MODULES = ("livekit.rtc.resources", "importlib.readers", "numpy.fft", "polyphone.speech.live",
                "polyphone.audio.dtmf",
                "cryptography.hazmat.backends.openssl", "cryptography.hazmat.primitives.ciphers",
                "cryptography.hazmat.primitives.serialization",
                "cryptography.hazmat.decrepit.ciphers.algorithms")


def warm_up(modules: tuple[str, ...] = WARM_MODULES) -> list[str]:
    """Import what the first call would otherwise import on the loop: WARM_MODULES before the
    window opens (livekit's echo canceller alone takes ~0.1-0.2 s), CALL_MODULES in a worker
    thread once it is shown. Returns the modules that failed."""
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    if modules is WARM_MODULES and "polyphone.audio.pipeline" not in failed:
        _load_echo_canceller()
    return failed


def _load_echo_canceller() -> None:
    """livekit loads its native library (~30 MB, ctypes, holding the GIL) when the first echo
    canceller is made: 6 ms warm, 611 ms from a cold disk cache, measured here. Made once
    before the window opens, not on the first call's loop (tests/gui/test_bridge_audio.py's
    stall watch caught 1050 ms there)."""
    from ..audio.processing import AudioProcessor

    AudioProcessor()
