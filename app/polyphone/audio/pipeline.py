"""AudioPipeline: the real-device audio of one call, put together in one place.

    mic -> Capture (ring) -> MicrophoneTrack -> [AEC/NS/AGC] -> aiortc  (source)
    aiortc -> Playout (adaptive buffer) -> speaker                     (sink)

Both directions feed the meters, voice activity and turn latency
(`analysis.CallMeters`) and the stereo recording; what goes to the speaker
feeds the echo canceller's reverse stream. A watchdog moves a stream to the
system default when its device stops delivering (unplugged) and says so with
`DeviceChanged`; the call goes on. Events go to `on_event` on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..aio import cancel_and_wait
from .analysis import CallMeters
from .capture import Capture, MicrophoneTrack
from .devices import Device, DeviceError
from .echo_watch import EchoWatch
from .events import AudioStats, DeviceChanged, LogLine
from .files import SAMPLE_RATE
from .opus import MonoOpusEncoder
from .playout import Playout
from .processing import AudioProcessor
from .settings import AudioSettings
from .watcher import DeviceWatcher

MAX_VOLUME = 1.5       # 150 %: above 100 % the speaker path limits instead of wrapping
LEVELS_EVERY_S = 0.1
STATS_EVERY_S = 1.0
WATCH_EVERY_S = 0.5     # stalled-stream check
WATCH_DEVICES_S = 2.0   # device list re-scan (pactl) while a chosen device is in use
DEVICE_GONE_S = 3.0   # a stream whose callbacks stopped this long ago has lost its device
FIRST_AUDIO_S = 5.0   # how long a new stream may take to start (idle PulseAudio sinks: ~2 s)



class AudioPipeline:
    def __init__(self, settings: AudioSettings | None = None,
                 on_event: Callable[[Any], None] = lambda e: None) -> None:
        self.settings = s = settings or AudioSettings()
        self.on_event = on_event
        self.processor = AudioProcessor(s.echo_cancellation, s.noise_suppression, s.gain_control)
        self.meters = CallMeters()
        self.echo_watch = EchoWatch()
        self.capture = Capture(s.input_device)
        self.source = MicrophoneTrack(self.capture, process=self._process_mic,
                                      encoder=MonoOpusEncoder())
        self._played = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)   # scratch: 0.5 s of reference
        self.sink = Playout(s.output_device, volume=self._clamp(s.volume),
                            min_target_ms=s.min_playout_ms, max_target_ms=s.max_playout_ms)
        self.recorder = None
        self.record_error = ""
        self._task: asyncio.Task | None = None
        self.watcher: DeviceWatcher | None = None
        self._moves: list[asyncio.Future] = []
        self.source.hooks.append(self._on_mic)
        self.sink.hooks.append(self._on_speaker)

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open both devices (raises DeviceError with what to do) and start the meters."""
        # Opening runs pactl and PortAudio (~90 ms): off the loop, so a window stays live.
        opened_in = await asyncio.to_thread(self.capture.start)
        try:
            opened_out = await asyncio.to_thread(self.sink.open)
        except DeviceError:
            await asyncio.to_thread(self.capture.stop)
            raise
        for kind, opened in (("input", opened_in), ("output", opened_out)):
            if opened.fallback_reason:
                self.on_event(DeviceChanged(kind, opened.device_name, opened.fallback_reason))
        if self.settings.record_path is not None:
            self._open_recorder(self.settings.record_path)
        await self._watch_devices()
        self._task = asyncio.ensure_future(self._run())

    async def _watch_devices(self) -> None:
        """Follow the chosen devices: one that goes away moves its stream to the default."""
        chosen = [(kind, dev) for kind, dev in (("input", self.capture.device_id),
                                                 ("output", self.sink.device_id)) if dev]
        if not chosen:
            return  # the system default: the sound server moves it for us
        self.watcher = DeviceWatcher(interval=WATCH_DEVICES_S)
        for kind, device_id in chosen:
            self.watcher.watch(device_id, kind, lambda lost, k=kind: self._device_lost(k, lost))
        await self.watcher.start()

    def _device_lost(self, kind: str, lost: Device) -> None:
        what = "microphone" if kind == "input" else "speaker"
        self._moves.append(asyncio.ensure_future(self._move_to_default(
            kind, f"The {what} {lost.name} was disconnected", f"{lost.name} went away")))

    async def _move_to_default(self, kind: str, why: str, failed: str) -> None:
        """Reopen one side on the system default (off the loop) and say so."""
        side = self.capture if kind == "input" else self.sink
        try:
            opened = await asyncio.to_thread(side.switch_device, None)
        except DeviceError as exc:
            self.on_event(LogLine("error", "device", f"{failed} and no other device could be "
                                                     f"opened: {exc.message}"))
            side.last_callback = time.monotonic()  # try again later, not at once
            return
        self.on_event(DeviceChanged(kind, opened.device_name,
                                    f"{why}; now using {opened.device_name}."))

    async def stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
            self.watcher = None
        for move in self._moves:
            with contextlib.suppress(BaseException):
                await move
        task, self._task = self._task, None
        await cancel_and_wait(task, quiet=True)  # a failed task must not keep streams open
        self.source.stop()
        await self.sink.stop_reading()
        await asyncio.to_thread(self.sink.close_stream)
        await asyncio.to_thread(self.capture.stop)
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self.recorder.close()

    # --- controls ----------------------------------------------------------------

    def set_muted(self, muted: bool) -> None:
        self.source.muted = muted

    @staticmethod
    def _clamp(volume: float) -> float:
        return max(0.0, min(MAX_VOLUME, float(volume)))

    def set_volume(self, volume: float) -> None:
        self.sink.volume = self._clamp(volume)

    def configure(self, **flags: bool) -> None:
        """echo_cancellation / noise_suppression / gain_control, during a call too."""
        self.processor.configure(**flags)

    # --- per-frame hooks (asyncio loop) ------------------------------------------

    def _on_mic(self, samples: np.ndarray, t: float) -> None:
        self.echo_watch.feed_mic(samples, t)
        event = self.meters.feed_input(samples, t)
        if event is not None:
            self.on_event(event)
        if self.recorder is not None:
            self.recorder.add_caller(samples, t)

    def _process_mic(self, samples: np.ndarray) -> np.ndarray:
        """Echo cancellation's two sides in step: first what the speaker has been given since
        the last microphone frame (its echo can only be in this frame or later), then the
        microphone. Fed at decode time instead, the reference ran ahead of the echo by the
        playout buffer, which moves: AEC3 then took from under a second to over four to
        converge (1 call in 3 on a loaded machine left the agent hearing itself)."""
        played = self.sink.played
        if played is not None:
            while True:
                n = played.read_into(self._played)
                if n:
                    self.processor.process_render(self._played[:n])
                if n < len(self._played):
                    break
        return self.processor.process_capture(samples)

    def _on_speaker(self, samples: np.ndarray, heard_at: float) -> None:
        if self.sink.played is None:  # a device at another rate: the decoded audio is the reference
            self.processor.process_render(samples)
        self.echo_watch.feed_far(samples, heard_at)
        event = self.meters.feed_output(samples, heard_at)
        if event is not None:
            self.on_event(event)
        if self.recorder is not None:
            self.recorder.add_agent(samples, heard_at)

    def _open_recorder(self, path: Path) -> None:
        from .recorder import CallRecorder

        try:
            self.recorder = CallRecorder(path)
        except OSError as exc:
            self.record_error = f"Recording is off: {path.parent} is not writable ({exc.strerror})."
            self.on_event(LogLine("warning", "audio", self.record_error))

    # --- periodic work -------------------------------------------------------------

    async def _run(self) -> None:
        next_stats = next_watch = time.monotonic()
        while True:
            await asyncio.sleep(LEVELS_EVERY_S)
            now = time.monotonic()
            self.on_event(self.meters.snapshot(now))
            if now >= next_watch:
                next_watch = now + WATCH_EVERY_S
                await self._watch(now)
            if now >= next_stats:
                next_stats = now + STATS_EVERY_S
                self.processor.set_delay_ms(self.sink.buffer.fill_ms + self.sink.output_latency_ms
                                            + self._input_latency_ms())
                self.echo_watch.check(now)
                self.on_event(self.stats())

    def stats(self) -> AudioStats:
        b = self.sink.buffer
        return AudioStats(
            capture_dropped_ms=self.source.dropped_ms, capture_overruns=self.capture.overruns,
            playout_underruns=b.underruns, playout_buffer_ms=b.fill_ms,
            playout_target_ms=b.target_ms, concealed_ms=b.concealed_ms,
            correction_ppm=round(b.correction_ppm, 1), agent_echo=self.echo_watch.agent_echo,
            mic_clipped_frames=self.echo_watch.mic_clipped_frames)

    def _input_latency_ms(self) -> float:
        with contextlib.suppress(Exception):
            if self.capture.opened is not None:
                return float(self.capture.opened.stream.latency) * 1000
        return 0.0

    async def _watch(self, now: float) -> None:
        """Move a stream whose device stopped delivering to the system default."""
        for kind, side in (("input", self.capture), ("output", self.sink)):
            limit = DEVICE_GONE_S if side.callbacks else FIRST_AUDIO_S
            if now - side.last_callback > limit:
                what = "microphone" if kind == "input" else "speaker"
                await self._move_to_default(kind, f"The {what} stopped delivering audio "
                                                  "(unplugged?)", f"The {what} stopped")
