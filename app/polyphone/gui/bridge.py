"""EngineBridge: the one object between the application (asyncio) and the widgets (Qt).

Like Electrum's `QtEventListener`: events in, Qt signals out, commands forwarded. The
application is `services.phone.Phone` (calls, devices, history) and
`services.script_runs.ScriptRuns`; the bridge owns both, gives the phone its listener, and
turns each event the phone reports into one signal. Widgets connect to these signals and
call the `@asyncSlot` commands; they never see asyncio, a `Call`, a token or the keyring's
blocking calls (the keyring commands here run them in a worker thread).

Events reach the listener on the event loop, which under qasync is the Qt thread; the phone
moves events from other threads there first (the loop is captured when the bridge is built,
so nothing is dropped before the first call).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal
from qasync import asyncSlot

from ..config import ProfileStore, Settings
from ..engine.events import (
    AgentSilence,
    AudioLevels,
    AudioStats,
    CallError,
    ConnectionChanged,
    DeviceChanged,
    MediaResumed,
    MediaStalled,
    QualityWarning,
    SelectedPair,
    SessionStarted,
    StatsSample,
    TurnLatency,
)
from ..history import History
from ..services import app_events as ev
from ..services.call_media import MediaFactory
from ..services.local_gateway import EmbeddedGateway
from ..services.log_entry import LineLogHandler, LogEntry
from ..services.phone import Phone
from ..services.script_runs import ScriptRuns
from ..services.tokens import TokenVault
from . import permissions
from .loop_lag import LoopLagMonitor

STARTING, IDLE = ev.STARTING, ev.IDLE


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
    log_line = Signal(object)                    # services.log_entry.LogEntry, redacted
    levels = Signal(float, float, bool, bool)    # input dBFS, output dBFS, speaking in, out
    turn_latency = Signal(int, float)            # turn, milliseconds
    audio_stats = Signal(object)                 # engine.events.AudioStats
    device_changed = Signal(str, str, str)       # kind, device name, reason
    quality_warning = Signal(object)             # engine.events.QualityWarning (raised or cleared)
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
    caption = Signal(object)                     # services.app_events.Caption (partial or final)
    captions_status = Signal(object)             # services.app_events.CaptionsStatus

    def __init__(self, profiles: ProfileStore, settings: Settings, *, vault: TokenVault | None = None,
                 history: History | None = None, media_factory: MediaFactory | None = None,
                 gateway: EmbeddedGateway | None = None, timeouts: Any = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lag = LoopLagMonitor(self)
        self.lag.lag.connect(self.loop_lag)
        self.last_max_lag_ms = 0.0
        self.phone = Phone(profiles, settings, self._deliver, vault=vault, history=history,
                           media_factory=media_factory, gateway=gateway, timeouts=timeouts,
                           ask_microphone=lambda: permissions.request_microphone(self),
                           microphone_granted=permissions.microphone_granted)
        self.runs = ScriptRuns(self.phone, self._deliver)
        self.profiles, self.settings = profiles, settings
        self.vault, self.history, self.redact = self.phone.vault, self.phone.history, self.phone.redact
        self._signals: dict[type, Callable[[Any], None]] = self._signal_table()

    def _signal_table(self) -> dict[type, Callable[[Any], None]]:
        return {
            ev.PhoneState: lambda e: self.state_changed.emit(e.state, e.previous, e.reason),
            ConnectionChanged: lambda e: self.connection_changed.emit(e.component, e.state),
            SessionStarted: lambda e: self.session_started.emit(e.session_id, e.call_sid),
            SelectedPair: self.pair_selected.emit, StatsSample: self.stats_sampled.emit,
            MediaStalled: lambda e: self.media_stalled.emit(e.seconds),
            MediaResumed: lambda e: self.media_resumed.emit(e.gap_seconds),
            AgentSilence: lambda e: self.agent_silence.emit(e.active, e.seconds),
            LogEntry: self.log_line.emit,
            AudioLevels: lambda e: self.levels.emit(e.input_dbfs, e.output_dbfs, e.input_speaking,
                                                    e.output_speaking),
            TurnLatency: lambda e: self.turn_latency.emit(e.turn, e.latency_ms),
            AudioStats: self.audio_stats.emit, QualityWarning: self.quality_warning.emit,
            DeviceChanged: lambda e: self.device_changed.emit(e.kind, e.device, e.reason),
            ev.Busy: self._on_busy, ev.CallFinished: self._on_call_finished,
            ev.Notice: lambda e: self.notice.emit(e.text),
            ev.DevicesListed: lambda e: self.devices_listed.emit(e.inputs, e.outputs),
            ev.RunProgress: lambda e: self.run_event.emit(e.event),
            ev.Caption: self.caption.emit, ev.CaptionsStatus: self.captions_status.emit,
        }

    # --- application events -> signals ----------------------------------------------------

    def _deliver(self, event: Any) -> None:
        handler = self._signals.get(type(event))
        if handler is None and isinstance(event, CallError):
            handler = self.call_error.emit
        if handler is not None:
            handler(event)

    def _on_busy(self, e: ev.Busy) -> None:
        if e.busy and not self.runs.running:
            self.lag.reset()
        self.busy_changed.emit(e.busy)

    def _on_call_finished(self, e: ev.CallFinished) -> None:
        self.last_max_lag_ms = round(self.lag.max_ms, 1)
        self.phone.log("debug", "app",
                       f"Event loop lag during set-up and call: worst {self.last_max_lag_ms} ms")
        self.call_finished.emit(e.record)

    def on_event(self, event: Any) -> None:
        """An engine or audio event from anywhere (any thread) into the application."""
        self.phone.on_event(event)

    def log(self, level: str, source: str, text: str) -> None:
        self.phone.log(level, source, text)

    def log_handler(self) -> logging.Handler:
        """A `logging` handler that shows Python log records in the event log (redacted)."""
        return LineLogHandler(self.phone.on_event_log)

    # --- state the widgets read ------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.phone.state

    @property
    def busy(self) -> bool:
        return self.phone.busy

    @property
    def muted(self) -> bool:
        return self.phone.muted

    @property
    def script_running(self) -> bool:
        return self.runs.running

    @property
    def last_record(self):
        return self.phone.last_record

    # --- commands --------------------------------------------------------------------------

    @asyncSlot(str, str)
    async def place_call(self, profile_name: str, variant_name: str = "") -> None:
        await self.phone.place_call(profile_name, variant_name)

    @asyncSlot(str, str, str)
    async def run_script(self, path: str, profile_name: str, variant_name: str = "") -> None:
        """Play a caller script against a profile and variant (no devices: the files are the audio)."""
        await self.runs.run(path, profile_name, variant_name)

    @asyncSlot()
    async def stop_run(self) -> None:
        await self.runs.stop()

    @asyncSlot()
    async def hang_up(self) -> None:
        await self.phone.hang_up()

    @asyncSlot(bool)
    async def set_muted(self, muted: bool) -> None:
        self.phone.set_muted(muted)

    @asyncSlot(float)
    async def set_volume(self, volume: float) -> None:
        self.phone.set_volume(volume)

    @asyncSlot(bool)
    async def set_captions(self, on: bool) -> None:
        """Captions on or off now, for this call and the next (the window saves the setting)."""
        await self.phone.set_captions(on)

    def send_dtmf(self, digits: str) -> None:
        """Keypad tones (0-9, *, #) to the agent, during a call; why not, in the log."""
        try:
            sent, why = self.phone.send_dtmf(digits), "no call takes them now"
        except ValueError as exc:   # not a key
            sent, why = False, str(exc)
        if not sent:
            self.phone.log("warning", "call", f"Keypad tone not sent: {why}")   # not which key

    @asyncSlot()
    async def apply_processing(self) -> None:
        self.phone.apply_processing()

    @asyncSlot()
    async def apply_speech(self) -> None:
        """The captions' recogniser from the settings (the old one's processes end)."""
        await self.phone.apply_speech()

    @asyncSlot()
    async def refresh_devices(self) -> None:
        await self.phone.refresh_devices()

    @asyncSlot(str)
    async def select_input(self, device_id: str) -> None:
        await self.phone.select_input(device_id)

    @asyncSlot(str)
    async def select_output(self, device_id: str) -> None:
        self.phone.select_output(device_id)

    async def start_meter(self) -> None:
        await self.phone.start_meter()

    @asyncSlot(str)
    async def test_device(self, kind: str) -> None:
        self.check_finished.emit(kind, await self.phone.test_device(kind))

    # --- the keyring, off the UI thread ------------------------------------------------------

    @asyncSlot()
    async def check_keyring(self) -> None:
        problem = await asyncio.to_thread(self.vault.probe)
        name = await asyncio.to_thread(self.vault.backend_name)
        self.keyring_status.emit(name, str(problem) if problem else "")

    async def keyring(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs one `TokenVault` method in a worker thread (D-Bus and Keychain calls block)."""
        return await asyncio.to_thread(fn, *args)

    # --- shutdown --------------------------------------------------------------------------

    @asyncSlot()
    async def close_down(self) -> None:
        """`shutdown()` for the window's closeEvent; emits `shut_down` when done."""
        try:
            await self.shutdown()
        finally:
            self.shut_down.emit()

    async def shutdown(self) -> None:
        try:
            await self.phone.shutdown(self.runs.stop)
        finally:
            self.lag.stop()
