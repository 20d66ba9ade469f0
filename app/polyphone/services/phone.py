"""Phone: the softphone behind the window, without Qt.

`place_call(profile, variant)` builds the request (`requests.RequestBuilder`: the token is
read from the keyring in a worker thread at that moment, or the embedded demo gateway
starts), opens the audio, runs `engine.call.Call` to its end, stops the audio (which
finalises the recording) and writes one history row. Between calls it keeps the idle
microphone meter, runs the device checks and answers keyring questions. A scripted run
(`script_runs.ScriptRuns`) takes the phone's `busy` flag the same way a call does.

Everything it has to say goes to one listener, on the event loop: the engine's events with
secrets hidden (`LogLine` as a `log_entry.LogEntry`) and `app_events`. Engine events from
another thread (the audio device watcher, Python logging) are moved onto the loop first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from ..config import ProfileStore, Settings
from ..engine.call import Call, CallResult
from ..engine.events import AudioLevels, CallError, DeviceChanged, LogLine, StateChanged
from ..history import CallRecord, History, HistoryError
from . import call_media, call_setup
from .app_events import IDLE, STARTING, Busy, CallFinished, CaptionsStatus, DevicesListed, Notice, PhoneState
from .call_details import CallDetails
from .captions import LiveCaptions
from .errors import AppError, ErrorKind, PrepError
from .local_gateway import EmbeddedGateway
from .log_entry import LogEntry, wall_time
from .redact import Redactor
from .requests import RequestBuilder, Target
from .tokens import TokenVault

FINAL = ("ENDED", "FAILED")
SHUTDOWN_TIMEOUT = 12.0
WRAP_UP_TIMEOUT = 10.0   # an ended call closing its devices and writing its history row
NOT_ALLOWED = ("Polyphone may not use the microphone, so the agent would hear only silence.",
               "Allow it in System Settings → Privacy & Security → Microphone, then call again.")
Listener = Callable[[Any], None]


async def _always_allowed() -> bool:
    return True


class Phone:
    def __init__(self, profiles: ProfileStore, settings: Settings, listener: Listener, *,
                 vault: TokenVault | None = None, history: History | None = None,
                 media_factory: call_media.MediaFactory | None = None,
                 gateway: EmbeddedGateway | None = None, timeouts: Any = None,
                 ask_microphone: Callable[[], Awaitable[bool]] = _always_allowed,
                 microphone_granted: Callable[[], bool] = lambda: True,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.profiles, self.settings, self._listener = profiles, settings, listener
        self.vault = vault or TokenVault()
        self.history = history if history is not None else History()
        self.gateway = gateway or EmbeddedGateway()
        self.timeouts = timeouts
        self.redact = Redactor()
        self.requests = RequestBuilder(profiles, self.vault, self.gateway, self.redact, self.on_event_log)
        self._media_factory = media_factory or call_media.default_media_factory
        self._ask_microphone, self.microphone_granted = ask_microphone, microphone_granted
        self.state, self.busy, self.muted, self.closing = IDLE, False, False, False
        self.call: Call | None = None
        self.media: call_media.CallMedia | None = None
        self.last_record: CallRecord | None = None
        self.details: CallDetails | None = None
        self.meter = call_media.InputMeter(lambda dbfs: self._emit(AudioLevels(dbfs, -120.0, False, False)))
        self.captions = LiveCaptions(self.on_event, settings.transcriber, settings.whisper_model)
        self._prep_task: asyncio.Task | None = None
        self._run_task: asyncio.Task | None = None
        self._call_task: asyncio.Task | None = None
        self._thread = threading.get_ident()
        self._loop = loop or asyncio.get_event_loop_policy().get_event_loop()

    # --- events in -------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """The listener given to the engine and the audio; any thread."""
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.on_event, event)
            return
        if isinstance(event, StateChanged):
            self._set_state(event.state.value, event.reason, event.previous.value)
        elif isinstance(event, CallError):
            self.emit_error(event)
        elif isinstance(event, LogLine):
            self._emit_log(event)
        else:
            if isinstance(event, DeviceChanged):
                self.log("warning", "audio", f"{event.kind} device changed to {event.device}: {event.reason}")
            self._emit(event)
        if self.call is not None and self.details is not None:
            for warning in self.details.feed(event, self.muted):
                self._emit(warning)
                self.log("warning" if warning.active else "info", "quality", warning.message)

    def on_event_log(self, level: str, source: str, text: str) -> None:
        self.on_event(LogLine(level, source, text))

    def log(self, level: str, source: str, text: str) -> None:
        self._emit_log(LogLine(level, source, text))

    def emit_error(self, error: CallError) -> None:
        self._emit(dataclasses.replace(error, message=self.redact(error.message),
                                       detail=self.redact(error.detail)))

    def _emit_log(self, e: LogLine) -> None:
        self._emit(LogEntry(wall_time(e.t), e.level, e.source, self.redact(e.text)))

    def _set_state(self, state: str, reason: str = "", previous: str | None = None) -> None:
        previous = self.state if previous is None else previous
        self.state = state
        self._emit(PhoneState(state, previous, self.redact(reason)))

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self._emit(Busy(busy))

    def _emit(self, event: Any) -> None:
        self._listener(event)

    # --- calls -----------------------------------------------------------------------------

    async def place_call(self, profile_name: str, variant_name: str = "") -> None:
        if not await self._free_after_the_last_call():
            self.log("warning", "call", "A call is already running; hang up first.")
            return
        self._run_task = self._call_task = asyncio.current_task()
        started = time.time()
        self.details = CallDetails(self.redact, self.settings.input_device, self.settings.output_device)
        self.set_busy(True)
        self._prep_task = asyncio.current_task()
        self._set_state(STARTING, f"calling {profile_name}", IDLE)
        result: CallResult | None = None
        error: CallError | None = None
        record_path: Path | None = None
        try:
            request = await self.requests.build(Target(profile_name, variant_name=variant_name,
                                                       timeouts=self.timeouts))
            await self.meter.stop()
            if not await self._ask_microphone():
                raise PrepError(AppError(ErrorKind.DEVICE, *NOT_ALLOWED))
            record_path, problem = call_setup.recording_path(self.settings, profile_name, started)
            if problem:
                self._emit(Notice(problem))
            self.media = self._media_factory(call_media.audio_settings(self.settings, record_path),
                                             self.on_event)
            await self._start_media(self.media)
            self.captions.reset()
            if self.settings.captions:
                await self.captions.start(self.media)
            self.call = Call(request, self.media.source, self.media.sink, self.on_event)
            self._prep_task = None
            result = await self.call.run()
            error = result.error
        except PrepError as exc:
            error = exc.error
            self.emit_error(error)
            self.log("error", "call", str(error))
        except asyncio.CancelledError:
            self.log("info", "call", "Call cancelled before it started.")
        except Exception as exc:  # a bug of ours must not leave the window stuck in a call
            error = AppError(ErrorKind.INTERNAL, "Polyphone hit an internal error while placing the call.",
                             "Call again; if it persists, report it with the event log.",
                             detail=self.redact(f"{type(exc).__name__}: {exc}"[:300]))
            self.emit_error(error)
            self.log("error", "call", f"{error.message} ({error.detail})")
        finally:
            await self._finish_call(profile_name, variant_name, started, result, error, record_path)

    async def _free_after_the_last_call(self) -> bool:
        """A call that has ended may still be closing its devices and writing its history row
        (a moment after the state turned ENDED, when the Call button is back): a Call pressed
        then waits for that instead of being dropped. True when the phone is free."""
        last = self._call_task
        if self.busy and not self.closing and self.state in FINAL and last is not None \
                and not last.done() and last is not asyncio.current_task():
            await asyncio.wait({last}, timeout=WRAP_UP_TIMEOUT)
        return not (self.busy or self.closing)

    async def _start_media(self, m: call_media.CallMedia) -> None:
        try:
            await m.start()
        except Exception as exc:
            failure = call_setup.device_error(exc)
            if failure is None:
                raise
            raise failure from None
        m.set_muted(self.muted)

    async def _finish_call(self, profile: str, variant: str, started: float, result: CallResult | None,
                           error: CallError | None, record_path: Path | None) -> None:
        self._prep_task = None
        captions = asyncio.ensure_future(self.captions.stop())   # the last phrase, beside the devices
        if self.media is not None:
            try:
                await self.media.stop()
            except Exception as exc:
                self.log("error", "audio", f"Stopping the audio failed: {exc}")
        self._keep_transcript(await captions)
        self.media, self.call = None, None
        if result is None:
            self._set_state("FAILED" if error else "ENDED",
                            error.message if error else "Cancelled before the call started.")
        self.last_record = await self._write_history(profile, variant, started, result, error, record_path)
        self.set_busy(False)
        self._emit(CallFinished(self.last_record))
        if not self.closing:
            await self.start_meter()

    def _keep_transcript(self, transcript: list) -> None:
        """The call's words into its details (ms since the call was placed) for the history."""
        if self.details is None or not transcript:
            return
        from ..speech.transcribe import transcript_rows

        self.details.data["transcript"] = transcript_rows(transcript, self.details.t0)

    async def _write_history(self, profile: str, variant: str, started: float, result: CallResult | None,
                             error: CallError | None, record_path: Path | None) -> CallRecord:
        details = self.details or CallDetails(self.redact)
        rec = call_setup.history_record(profile, variant, started, result, error, record_path,
                                        details.turns, self.redact)
        rec.details = details.data
        rec.transcript = self.redact("\n".join(f"{'Agent' if u['who'] == 'agent' else 'You'}: {u['text']}"
                                               for u in details.data.get("transcript", [])))
        try:  # in a worker thread: the commit's fsync can take half a second on a busy disk
            await asyncio.to_thread(self.history.add, rec)
        except (HistoryError, sqlite3.Error, OSError) as exc:
            self._emit(Notice(f"This call was not added to the history: {exc}"))
        if self.history.notice:
            self._emit(Notice(self.history.notice))
            self.history.notice = ""
        return rec

    async def hang_up(self) -> None:
        if self.call is not None:
            await self.call.hangup()
        elif self._prep_task is not None:
            self._prep_task.cancel()

    # --- during a call ----------------------------------------------------------------------

    async def set_captions(self, on: bool) -> None:
        """Captions on or off, for this call (from now) and the next ones."""
        self.settings.captions = on
        if on and self.media is not None and self.call is not None:
            await self.captions.start(self.media)
        elif not on:
            await self.captions.stop()
            self._emit(CaptionsStatus(""))

    async def apply_speech(self) -> None:
        """The recogniser chosen in the settings, from now: a call's captions restart with it."""
        changed = await self.captions.configure(self.settings.transcriber, self.settings.whisper_model)
        if changed and self.settings.captions and self.media is not None and self.call is not None:
            await self.captions.start(self.media)

    def send_dtmf(self, digits: str) -> bool:
        """Keypad tones into the call, in band (ITU-T Q.24 lengths); False when no call can
        take them. A bad key raises ValueError."""
        from ..audio import dtmf

        source = getattr(self.media, "source", None)
        if self.call is None or not hasattr(source, "send_tones"):
            return False
        source.send_tones(dtmf.tones(digits))
        # how many, not which: keys may be a PIN or a card number, and the log goes into bundles
        self.log("info", "call", f"Sent {len(digits)} keypad tone(s).")
        return True

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        if self.media is not None:
            self.media.set_muted(muted)
        self.log("info", "audio", "Microphone muted." if muted else "Microphone on.")

    def set_volume(self, volume: float) -> None:
        self.settings.volume = min(max(volume, 0.0), 1.5)
        if self.media is not None:
            self.media.set_volume(self.settings.volume)

    def apply_processing(self) -> None:
        """Echo cancellation / noise suppression / gain, from the settings, to the live call."""
        if self.media is not None:
            s = self.settings
            self.media.configure(echo_cancellation=s.echo_cancellation,
                                 noise_suppression=s.noise_suppression, gain_control=s.gain_control)

    # --- devices ----------------------------------------------------------------------------

    async def refresh_devices(self) -> None:
        try:
            inputs, outputs = await asyncio.to_thread(call_media.list_devices)
        except Exception as exc:
            why = getattr(exc, "message", None) or f"The sound devices could not be listed: {exc}"
            self._emit(Notice(why))
            inputs, outputs = [], []
        self._emit(DevicesListed(inputs, outputs))

    async def select_input(self, device_id: str) -> None:
        self.settings.input_device = device_id
        if self.busy:
            self.log("info", "audio", "The new microphone is used from the next call.")
        else:
            await self.start_meter()

    def select_output(self, device_id: str) -> None:
        self.settings.output_device = device_id
        if self.busy:
            self.log("info", "audio", "The new speaker is used from the next call.")

    async def start_meter(self) -> None:
        """The idle microphone meter (not during a call: the call's pipeline meters then)."""
        if self.busy or self.closing:
            return
        if not self.microphone_granted():  # asked on the first call, not at launch
            self.log("info", "audio", "The microphone meter starts once Polyphone may use the microphone.")
            return
        problem = await self.meter.start(self.settings.input_device or None)
        if problem:
            self.log("info", "audio", f"No idle microphone meter: {problem}")

    async def test_device(self, kind: str) -> str:
        """The microphone test or speaker tone, in words."""
        if self.busy:
            return "Hang up first: the devices are in use by the call."
        device = self.settings.input_device if kind == "input" else self.settings.output_device
        if kind == "input":
            await self.meter.stop()
        try:
            text = await call_media.run_check(kind, device or None)
        finally:
            if kind == "input":
                await self.start_meter()
        self.log("info", "audio", f"{'Microphone' if kind == 'input' else 'Speaker'} test: {text}")
        return text

    # --- shutdown ---------------------------------------------------------------------------

    def claim(self, task: asyncio.Task | None) -> bool:
        """For a scripted run: take the phone if it is free (False when a call holds it)."""
        if self.busy or self.closing:
            return False
        self._run_task = task
        return True

    async def shutdown(self, stop_runs: Callable[[], Awaitable[None]] | None = None) -> None:
        """Hang up (cleanly: `close` is sent), stop a run, the meter and the local gateway."""
        self.closing = True
        if self.call is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call.hangup("The window was closed."), SHUTDOWN_TIMEOUT)
        elif self._prep_task is not None:
            self._prep_task.cancel()
        if stop_runs is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stop_runs(), SHUTDOWN_TIMEOUT)
        if self._run_task is not None and not self._run_task.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._run_task), SHUTDOWN_TIMEOUT)
        try:  # every step runs, whatever an earlier one raised
            await self.meter.close()
            with contextlib.suppress(Exception):
                await self.captions.close()
        finally:
            try:
                with contextlib.suppress(Exception):
                    await self.gateway.stop()
            finally:
                self.history.close()
