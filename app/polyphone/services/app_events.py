"""What the application layer tells its front end, beside the engine's own events.

`phone.Phone` hands its listener the engine's events (secrets already hidden; `LogLine`
becomes a `log_entry.LogEntry`) and these. Plain frozen dataclasses: the window's bridge
turns each into a Qt signal, a test just collects them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STARTING = "STARTING"   # the phone's state before the engine's Call exists
IDLE = "IDLE"


@dataclass(frozen=True)
class PhoneState:
    state: str          # IDLE, STARTING, or an engine CallState's value
    previous: str
    reason: str = ""    # redacted


@dataclass(frozen=True)
class Busy:
    busy: bool          # a call or a scripted run (or its set-up/teardown) holds the phone


@dataclass(frozen=True)
class CallFinished:
    record: Any         # history.CallRecord, already written (or not: see Notice)


@dataclass(frozen=True)
class Notice:
    text: str           # something to tell the person that is not a call error


@dataclass(frozen=True)
class DevicesListed:
    inputs: list        # audio.devices.Device
    outputs: list


@dataclass(frozen=True)
class CheckFinished:
    kind: str           # input | output
    text: str           # the result in words


@dataclass(frozen=True)
class KeyringStatus:
    backend: str        # "SecretService Keyring", ..., or "none"
    problem: str = ""   # empty when the keyring answers


@dataclass(frozen=True)
class RunProgress:
    event: Any          # runs.events.*, or script_runs.RunProblem / RunSaved


@dataclass(frozen=True)
class Caption:
    """One utterance recognised during a call (services/captions.py)."""

    who: str            # caller | agent
    start: float        # monotonic seconds of its first and last audio
    end: float
    text: str
    final: bool = True  # False: the words so far, while it is still being spoken


@dataclass(frozen=True)
class CaptionsStatus:
    engine: str         # the recogniser's label, e.g. "pocketsphinx (offline, lower accuracy)"; "" when off
    problem: str = ""   # why there are no captions (the recogniser could not load), with what to do
