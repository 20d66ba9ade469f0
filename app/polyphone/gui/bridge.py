"""EngineBridge: the one object between the engine (asyncio) and the widgets (Qt).

Engine and audio events arrive on the asyncio loop, which under qasync is the
Qt thread, and become Qt signals at once (an event from another thread is
first moved onto the loop with `call_soon_threadsafe`). Widgets only connect
to these signals and call the `@asyncSlot` commands; they never see asyncio,
a `Call`, a token or the keyring's blocking calls.

A call: `place_call(profile, variant)` reads the profile, its token (keyring,
in a worker thread, at that moment) or starts the embedded local gateway,
opens the audio, runs `engine.call.Call` to its end, stops the audio (which
finalises the recording) and writes one history row. The bridge's own state
before the engine's `Call` exists is STARTING.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from qasync import asyncSlot

from ..config import Profile, ProfileStore, Settings
from ..engine.call import Call, CallResult
from ..engine.diagnostics import QualityMonitor
from ..engine.events import (
    AgentSilence,
    AudioLevels,
    AudioStats,
    CallError,
    ConnectionChanged,
    DeviceChanged,
    ErrorKind,
    LogLine,
    MediaResumed,
    MediaStalled,
    QualityWarning,
    SelectedPair,
    SessionStarted,
    StateChanged,
    StatsSample,
    TurnLatency,
)
from ..engine.request import CallRequest, Timeouts, request_from_profile
from ..history import CallRecord, History, HistoryError
from . import call_setup, media, permissions
from .call_setup import PrepError
from .errors import AppError
from .local_demo import EmbeddedGateway
from .log_entry import LogEntry, QtLogHandler, wall_time
from .loop_lag import LoopLagMonitor
from .redact import Redactor
from .tokens import TokenVault

STARTING = "STARTING"
IDLE = "IDLE"
FINAL = ("ENDED", "FAILED")
SHUTDOWN_TIMEOUT = 12.0
MAX_DETAILS = 7200   # stats seconds / log lines kept per call for its repro bundle (2 h of stats)


class EngineBridge(QObject):
    # --- engine events ---------------------------------------------------------------
    state_changed = Signal(str, str, str)        # state, previous, reason
    connection_changed = Signal(str, str)        # component, state
    session_started = Signal(str, str)           # sessionId, callSid
    pair_selected = Signal(object)               # engine.events.SelectedPair
    stats_sampled = Signal(object)               # engine.events.StatsSample
    media_stalled = Signal(float)                # seconds without audio
    media_resumed = Signal(float)                # length of the gap, seconds
    agent_silence = Signal(bool, float)          # the agent sends no audio packets (active), seconds
    call_error = Signal(object)                  # CallError (AppError before the call), redacted
    log_line = Signal(object)                    # log_entry.LogEntry, redacted
    levels = Signal(float, float, bool, bool)    # input dBFS, output dBFS, speaking in, out
    turn_latency = Signal(int, float)            # turn, milliseconds
    audio_stats = Signal(object)                 # engine.events.AudioStats
    device_changed = Signal(str, str, str)       # kind, device name, reason
    # --- the app's own -----------------------------------------------------------------
    busy_changed = Signal(bool)                  # a call (or its set-up/teardown) is running
    call_finished = Signal(object)               # history.CallRecord
    devices_listed = Signal(object, object)      # inputs, outputs (lists of audio.devices.Device)
    check_finished = Signal(str, str)            # kind (input|output), result in words
    keyring_status = Signal(str, str)            # backend name, problem ("" when fine)
    notice = Signal(str)                         # something to tell the person, not a call error
    loop_lag = Signal(float, float)              # last second's worst ms, worst since reset ms
    shut_down = Signal()                         # close_down() has finished
    run_event = Signal(object)                   # a scripted run's progress (runs.events, script_runs)
    quality_warning = Signal(object)             # engine.events.QualityWarning (raised or cleared)

    def __init__(self, profiles: ProfileStore, settings: Settings, *, vault: TokenVault | None = None,
                 history: History | None = None, media_factory: media.MediaFactory | None = None,
                 gateway: EmbeddedGateway | None = None, timeouts: Timeouts | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.profiles, self.settings = profiles, settings
        self.vault = vault or TokenVault()
        self.history = history if history is not None else History()
        self.gateway = gateway or EmbeddedGateway()
        self.timeouts = timeouts
        self._media_factory = media_factory or media.default_media_factory
        self.redact = Redactor()
        self.redact.add(self.gateway.token)
        self.lag = LoopLagMonitor(self)
        self.lag.lag.connect(self.loop_lag)
        self.state = IDLE
        self.busy = False
        self.muted = False
        self.call: Call | None = None
        self.media: media.CallMedia | None = None
        self.last_record: CallRecord | None = None
        self.last_max_lag_ms = 0.0
        self._meter = media.InputMeter(lambda dbfs: self.levels.emit(dbfs, -120.0, False, False))
        self._run_task: asyncio.Task | None = None
        self.script_runner = None   # runs.runner.ScriptRunner while a scripted run goes
        self.quality = QualityMonitor()
        self._details: dict[str, list] = {"stats": [], "log": [], "warnings": []}
        self._t0 = time.monotonic()
        self.script_running = False  # a scripted run (not a call) holds `busy`
        self._prep_task: asyncio.Task | None = None
        self._turns: list[float] = []
        self._closing = False
        self._thread = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handlers: dict[type, Any] = {
            StateChanged: self._on_state, ConnectionChanged: self._on_connection,
            SessionStarted: lambda e: self.session_started.emit(e.session_id, e.call_sid),
            SelectedPair: self.pair_selected.emit, StatsSample: self.stats_sampled.emit,
            MediaStalled: lambda e: self.media_stalled.emit(e.seconds),
            MediaResumed: lambda e: self.media_resumed.emit(e.gap_seconds),
            AgentSilence: lambda e: self.agent_silence.emit(e.active, e.seconds),
            CallError: self._emit_error, LogLine: self._on_log,
            AudioLevels: lambda e: self.levels.emit(e.input_dbfs, e.output_dbfs, e.input_speaking,
                                                    e.output_speaking),
            TurnLatency: self._on_turn, AudioStats: self.audio_stats.emit,
            DeviceChanged: self._on_device,
        }

    # --- engine events -> signals --------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """The listener given to the engine and the audio pipeline."""
        if threading.get_ident() != self._thread:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.on_event, event)
            return
        handler = self._handlers.get(type(event))
        if handler is None:
            handler = next((h for t, h in self._handlers.items() if isinstance(event, t)), None)
        if handler is not None:
            handler(event)
        if self.call is not None:
            self._keep_details(event)
            self.quality.muted = self.muted
            for warning in self.quality.feed(event):
                self.quality_warning.emit(warning)
                self._keep_details(warning)
                self.log("warning" if warning.active else "info", "quality", warning.message)

    def _keep_details(self, event: Any) -> None:
        """What a repro bundle of this call needs later: stats each second, the log, warnings."""
        d, t = self._details, round(getattr(event, "t", time.monotonic()) - self._t0, 3)
        if isinstance(event, StatsSample) and len(d["stats"]) < MAX_DETAILS:
            d["stats"].append({"t": t, **{k: v for k, v in dataclasses.asdict(event).items() if k != "t"}})
        elif isinstance(event, LogLine) and len(d["log"]) < MAX_DETAILS:
            d["log"].append({"t": t, "level": event.level, "source": event.source,
                             "text": self.redact(event.text)})
        elif isinstance(event, QualityWarning):
            d["warnings"].append({"t": t, **{k: v for k, v in dataclasses.asdict(event).items() if k != "t"}})

    def _on_state(self, e: StateChanged) -> None:
        self._set_state(e.state.value, self.redact(e.reason), e.previous.value)

    def _set_state(self, state: str, reason: str = "", previous: str | None = None) -> None:
        previous = self.state if previous is None else previous
        self.state = state
        self.state_changed.emit(state, previous, reason)

    def _on_connection(self, e: ConnectionChanged) -> None:
        self.connection_changed.emit(e.component, e.state)

    def _emit_error(self, e: CallError) -> None:
        self.call_error.emit(dataclasses.replace(e, message=self.redact(e.message),
                                                 detail=self.redact(e.detail)))

    def _on_log(self, e: LogLine) -> None:
        self.log_line.emit(LogEntry(wall_time(e.t), e.level, e.source, self.redact(e.text)))

    def log(self, level: str, source: str, text: str) -> None:
        self._on_log(LogLine(level, source, text))

    def _on_turn(self, e: TurnLatency) -> None:
        self._turns.append(e.latency_ms)
        self.turn_latency.emit(e.turn, e.latency_ms)

    def _on_device(self, e: DeviceChanged) -> None:
        self.log("warning", "audio", f"{e.kind} device changed to {e.device}: {e.reason}")
        self.device_changed.emit(e.kind, e.device, e.reason)

    def log_handler(self) -> logging.Handler:
        """A `logging` handler that shows Python log records in the event log (redacted)."""
        return QtLogHandler(lambda level, source, text: self.on_event(LogLine(level, source, text)))

    # --- calls ---------------------------------------------------------------------------

    @asyncSlot(str, str)
    async def place_call(self, profile_name: str, variant_name: str = "") -> None:
        if self.busy or self._closing:
            self.log("warning", "call", "A call is already running; hang up first.")
            return
        self._run_task = asyncio.current_task()
        await self._run_call(profile_name, variant_name)

    @asyncSlot(str, str, str)
    async def run_script(self, path: str, profile_name: str, variant_name: str = "") -> None:
        """Play a caller script against a profile and variant (no devices: the files are the audio)."""
        from . import script_runs
        if self.busy or self._closing:
            self.run_event.emit(script_runs.RunProblem("A call is running.", "Hang up, then run the script."))
            return
        self._run_task = asyncio.current_task()
        await script_runs.run(self, path, profile_name, variant_name)

    @asyncSlot()
    async def stop_run(self) -> None:
        if self.script_runner is not None:
            await self.script_runner.stop()

    @asyncSlot()
    async def hang_up(self) -> None:
        if self.call is not None:
            await self.call.hangup()
        elif self._prep_task is not None:
            self._prep_task.cancel()

    async def _run_call(self, profile_name: str, variant_name: str) -> None:
        self._loop = asyncio.get_running_loop()
        started, self._turns = time.time(), []
        self.quality = QualityMonitor()
        self._details, self._t0 = {"stats": [], "log": [], "warnings": []}, time.monotonic()
        self._details["devices"] = {"input": self.settings.input_device or "system default",
                                    "output": self.settings.output_device or "system default"}
        self._set_busy(True)
        self.lag.reset()
        self._prep_task = asyncio.current_task()
        self._set_state(STARTING, f"calling {profile_name}", IDLE)
        result: CallResult | None = None
        error: CallError | None = None
        record_path: Path | None = None
        try:
            profile = call_setup.load_profile(self.profiles, profile_name)
            request = await self._request(profile, variant_name)
            await self._meter.stop()
            if not await permissions.request_microphone(self):
                raise PrepError(AppError(ErrorKind.DEVICE, permissions.DENIED, permissions.HOW_TO_ALLOW))
            record_path, problem = call_setup.recording_path(self.settings, profile_name, started)
            if problem:
                self.notice.emit(problem)
            self.media = self._media_factory(media.options_from(self.settings, record_path),
                                             self.on_event)
            await self._start_media(self.media)
            self.call = Call(request, self.media.source, self.media.sink, self.on_event)
            self._prep_task = None
            result = await self.call.run()
            error = result.error
        except PrepError as exc:
            error = exc.error
            self._emit_error(error)
            self.log("error", "call", str(error))
        except asyncio.CancelledError:
            self.log("info", "call", "Call cancelled before it started.")
        except Exception as exc:  # a bug of ours must not leave the window stuck in a call
            error = AppError(ErrorKind.INTERNAL, "Polyphone hit an internal error while placing the call.",
                             "Call again; if it persists, report it with the event log.",
                             detail=self.redact(f"{type(exc).__name__}: {exc}"[:300]))
            self._emit_error(error)
            self.log("error", "call", f"{error.message} ({error.detail})")
        finally:
            await self._finish_call(profile_name, variant_name, started, result, error, record_path)

    async def _finish_call(self, profile: str, variant: str, started: float, result: CallResult | None,
                           error: CallError | None, record_path: Path | None) -> None:
        self._prep_task = None
        if self.media is not None:
            try:
                await self.media.stop()
            except Exception as exc:
                self.log("error", "audio", f"Stopping the audio failed: {exc}")
        self.media, self.call = None, None
        if result is None:
            self._set_state("FAILED" if error else "ENDED",
                            error.message if error else "Cancelled before the call started.")
        self.last_record = self._write_history(profile, variant, started, result, error, record_path)
        self.last_max_lag_ms = round(self.lag.max_ms, 1)
        self.log("debug", "app", f"Event loop lag during set-up and call: worst {self.last_max_lag_ms} ms")
        self._set_busy(False)
        self.call_finished.emit(self.last_record)
        if not self._closing:
            await self.start_meter()

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.busy_changed.emit(busy)

    async def _request(self, profile: Profile, variant_name: str) -> CallRequest:
        chosen = call_setup.variant_id(profile, variant_name, self.log)
        if profile.is_local:
            try:
                url = await self.gateway.url()
            except OSError as exc:
                raise PrepError(AppError(ErrorKind.NETWORK, "The local demo gateway could not start.",
                                         "Close other copies of Polyphone and try again.",
                                         detail=str(exc)[:200])) from None
            token, credentials = self.gateway.token, {}
            profile = dataclasses.replace(profile, fetch_ice_servers=False)
            self.log("info", "call", f"Local demo gateway at {url}")
        else:
            url = profile.signal_url()
            token, credentials = await asyncio.to_thread(call_setup.secrets_for, self.vault, profile,
                                                         self._log_from_thread)
        self.redact.add(token)
        for cred in credentials.values():
            self.redact.add(cred)
        return request_from_profile(profile, url, token, variant_id=chosen,
                                    turn_credential=credentials.get, timeouts=self.timeouts)

    def _log_from_thread(self, level: str, source: str, text: str) -> None:
        self.on_event(LogLine(level, source, text))

    async def _start_media(self, m: media.CallMedia) -> None:
        try:
            await m.start()
        except Exception as exc:
            failure = call_setup.device_error(exc)
            if failure is None:
                raise
            raise failure from None
        m.set_muted(self.muted)

    def _write_history(self, profile: str, variant: str, started: float, result: CallResult | None,
                       error: CallError | None, record_path: Path | None) -> CallRecord:
        rec = call_setup.history_record(profile, variant, started, result, error, record_path,
                                        self._turns, self.redact)
        rec.details = self._details
        try:
            self.history.add(rec)
        except (HistoryError, sqlite3.Error, OSError) as exc:
            self.notice.emit(f"This call was not added to the history: {exc}")
        if self.history.notice:
            self.notice.emit(self.history.notice)
            self.history.notice = ""
        return rec

    # --- during a call -------------------------------------------------------------------

    @asyncSlot(bool)
    async def set_muted(self, muted: bool) -> None:
        self.muted = muted
        if self.media is not None:
            self.media.set_muted(muted)
        self.log("info", "audio", "Microphone muted." if muted else "Microphone on.")

    @asyncSlot(float)
    async def set_volume(self, volume: float) -> None:
        self.settings.volume = min(max(volume, 0.0), 1.5)
        if self.media is not None:
            self.media.set_volume(self.settings.volume)

    @asyncSlot()
    async def apply_processing(self) -> None:
        """Echo cancellation / noise suppression / gain, from the settings, to the live call."""
        if self.media is not None:
            s = self.settings
            self.media.configure(echo_cancellation=s.echo_cancellation,
                                 noise_suppression=s.noise_suppression, gain_control=s.gain_control)

    # --- devices, checks, keyring ----------------------------------------------------------

    @asyncSlot()
    async def refresh_devices(self) -> None:
        try:
            inputs, outputs = await asyncio.to_thread(media.list_devices)
        except Exception as exc:
            self.notice.emit(getattr(exc, "message", None) or f"The sound devices could not be listed: {exc}")
            inputs, outputs = [], []
        self.devices_listed.emit(inputs, outputs)

    @asyncSlot(str)
    async def select_input(self, device_id: str) -> None:
        self.settings.input_device = device_id
        if self.busy:
            self.log("info", "audio", "The new microphone is used from the next call.")
        else:
            await self.start_meter()

    @asyncSlot(str)
    async def select_output(self, device_id: str) -> None:
        self.settings.output_device = device_id
        if self.busy:
            self.log("info", "audio", "The new speaker is used from the next call.")

    async def start_meter(self) -> None:
        """The idle microphone meter (not during a call: the call's pipeline meters then)."""
        if self.busy or self._closing:
            return
        if not permissions.microphone_granted():  # asked on the first call, not at launch
            self.log("info", "audio", "The microphone meter starts once Polyphone may use the microphone.")
            return
        problem = await self._meter.start(self.settings.input_device or None)
        if problem:
            self.log("info", "audio", f"No idle microphone meter: {problem}")

    @asyncSlot(str)
    async def test_device(self, kind: str) -> None:
        if self.busy:
            self.check_finished.emit(kind, "Hang up first: the devices are in use by the call.")
            return
        device = self.settings.input_device if kind == "input" else self.settings.output_device
        if kind == "input":
            await self._meter.stop()
        try:
            text = await media.run_check(kind, device or None)
        finally:
            if kind == "input":
                await self.start_meter()
        self.log("info", "audio", f"{'Microphone' if kind == 'input' else 'Speaker'} test: {text}")
        self.check_finished.emit(kind, text)

    @asyncSlot()
    async def check_keyring(self) -> None:
        problem = await asyncio.to_thread(self.vault.probe)
        name = await asyncio.to_thread(self.vault.backend_name)
        self.keyring_status.emit(name, str(problem) if problem else "")

    # --- shutdown --------------------------------------------------------------------------

    @asyncSlot()
    async def close_down(self) -> None:
        """`shutdown()` for the window's closeEvent; emits `shut_down` when done."""
        try:
            await self.shutdown()
        finally:
            self.shut_down.emit()

    async def shutdown(self) -> None:
        """Hang up (cleanly: `close` is sent), stop the meter and the local gateway."""
        self._closing = True
        if self.call is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call.hangup("The window was closed."), SHUTDOWN_TIMEOUT)
        elif self._prep_task is not None:
            self._prep_task.cancel()
        if self.script_runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.script_runner.stop(), SHUTDOWN_TIMEOUT)
        if self._run_task is not None and not self._run_task.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._run_task), SHUTDOWN_TIMEOUT)
        try:  # every step runs, whatever an earlier one raised
            await self._meter.close()
        finally:
            try:
                with contextlib.suppress(Exception):
                    await self.gateway.stop()
            finally:
                self.lag.stop()
                self.history.close()
