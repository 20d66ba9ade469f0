"""DeviceWatcher: re-scans the sound devices and reports those that come and go.

A headset plugged in shows up in the pickers; a device in use that goes away
calls `on_lost`, so capture or playout can move to the default and say so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from ..aio import cancel_and_wait
from .devices import Device, DeviceError, _filter, _scan, rescan

log = logging.getLogger(__name__)

SCAN_TIMEOUT = 15.0
"""Seconds one scan may take (pactl calls are bounded by pulse.PACTL_TIMEOUT each)."""


@dataclass(frozen=True)
class DeviceChanges:
    added: tuple[Device, ...] = ()
    removed: tuple[Device, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


class Watch:
    """One device in use, watched by a `DeviceWatcher`; `cancel()` when done with it."""

    def __init__(self, watcher: "DeviceWatcher", device_id: str, kind: str,
                 on_lost: Callable[[Device], None],
                 on_back: Callable[[Device], None] | None) -> None:
        self._watcher = watcher
        self.device_id = device_id
        self.kind = kind
        self.on_lost = on_lost
        self.on_back = on_back
        self.present = True
        self.last_seen: Device | None = None

    def cancel(self) -> None:
        self._watcher._watches.discard(self)


class DeviceWatcher:
    """Polls the device list (every `interval` s) on the running asyncio loop.

    `on_change(changes)` hears every addition and removal (monitors left out
    unless `include_monitors`). `watch(device_id, kind, on_lost, on_back)`
    follows one device in use: `on_lost(device)` once when it disappears,
    `on_back(device)` when it returns. Callbacks run on the loop; they should
    only schedule work (reopen the stream on the default and emit
    `DeviceChanged(kind, new_name, reason)`).

    With the pulse back end the server itself moves a stream whose device
    went away to the default device; the callback still fires so the app can
    say so. With the portaudio back end, PortAudio is re-scanned only while no
    tracked stream is open (re-initialising would stop it), so a device lost
    mid-stream shows up as a stream error first and here after the stream closes.
    """

    def __init__(self, *, interval: float = 2.0,
                 on_change: Callable[[DeviceChanges], None] | None = None,
                 include_monitors: bool = False,
                 scan: Callable[[], list[Device]] | None = None) -> None:
        self.interval = interval
        self.on_change = on_change
        self.include_monitors = include_monitors
        self._scan_fn = scan or _watch_scan
        self._watches: set[Watch] = set()
        self._task: asyncio.Task | None = None
        self.devices: tuple[Device, ...] = ()   # last scan, monitors included
        self.last_error: DeviceError | None = None
        self._scanned = False

    def watch(self, device_id: str, kind: str, on_lost: Callable[[Device], None],
              on_back: Callable[[Device], None] | None = None) -> Watch:
        w = Watch(self, device_id, kind, on_lost, on_back)
        if self._scanned:
            found = self._find(device_id, kind)
            w.present, w.last_seen = found is not None, found
        self._watches.add(w)
        return w

    def _find(self, device_id: str, kind: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id and d.kind == kind), None)

    async def start(self) -> None:
        """Scan once now (so `devices` is filled), then keep polling in a task."""
        if self._task is None:
            await self.poll()
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def __aenter__(self) -> "DeviceWatcher":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> DeviceChanges:
        """Scan now; call the callbacks; return what changed since the last scan."""
        try:
            devices = await asyncio.wait_for(asyncio.to_thread(self._scan_fn), SCAN_TIMEOUT)
        except (DeviceError, asyncio.TimeoutError) as exc:
            self.last_error = exc if isinstance(exc, DeviceError) else DeviceError(
                f"Listing devices took over {SCAN_TIMEOUT:g} s.", "Check the sound server.")
            log.warning("device scan failed: %s", self.last_error)
            return DeviceChanges()
        self.last_error = None
        old = {(d.id, d.kind): d for d in self.devices}
        new = {(d.id, d.kind): d for d in devices}
        first = not self._scanned
        self.devices, self._scanned = tuple(devices), True
        if first:
            for w in list(self._watches):
                w.last_seen = new.get((w.device_id, w.kind)) or w.last_seen
            changes = DeviceChanges()
        else:
            changes = DeviceChanges(tuple(d for k, d in new.items() if k not in old),
                                    tuple(d for k, d in old.items() if k not in new))
        for w in list(self._watches):
            self._update_watch(w, new.get((w.device_id, w.kind)))
        shown = DeviceChanges(tuple(_filter(changes.added, None, self.include_monitors)),
                              tuple(_filter(changes.removed, None, self.include_monitors)))
        if shown and self.on_change is not None:
            _safe_call(self.on_change, shown)
        return changes

    def _update_watch(self, w: Watch, now: Device | None) -> None:
        if now is None and w.present:
            w.present = False
            lost = w.last_seen or Device(id=w.device_id, name=w.device_id, kind=w.kind, hostapi="")
            _safe_call(w.on_lost, lost)
        elif now is not None:
            w.last_seen = now
            if not w.present:
                w.present = True
                if w.on_back is not None:
                    _safe_call(w.on_back, now)


def _safe_call(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a listener's bug must not stop the watcher
        log.exception("device watcher callback %r failed", fn)


def _watch_scan() -> list[Device]:
    """One watcher scan: re-scan PortAudio first when it is the back end and no stream is open."""
    scan = _scan()
    if scan.backend == "portaudio" and rescan():
        scan = _scan()
    return list(scan.devices)
