"""Events the audio layer emits; the engine re-exports them in `engine.events`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class AudioLevels:
    """Meters, about 10 per second: dBFS (-120 floor) and voice activity per direction."""

    input_dbfs: float
    output_dbfs: float
    input_speaking: bool = False
    output_speaking: bool = False
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class TurnLatency:
    """End of the caller's speech -> start of the agent's reply, for one turn."""

    turn: int
    latency_ms: float
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class AudioStats:
    """Once a second: what the audio path did (all counters since the call started)."""

    capture_dropped_ms: float = 0.0    # oldest mic audio dropped because the consumer lagged
    capture_overruns: int = 0          # PortAudio input overflows
    playout_underruns: int = 0         # the speaker asked for audio we did not have
    playout_buffer_ms: float = 0.0     # audio waiting to be played now
    playout_target_ms: float = 0.0     # what the adaptive buffer aims for
    concealed_ms: float = 0.0          # lost audio filled in
    correction_ppm: float = 0.0        # playout stretch (+) / squeeze (-), smoothed over ~10 s: under a
                                       # steady clock drift it equals the drift; after a burst, the catch-up
    agent_echo: float = 0.0            # last second: the agent's audio in the mic after processing, 0..1
    mic_clipped_frames: int = 0        # last second: 20 ms mic frames that reached full scale
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class DeviceChanged:
    """A device in use went away (or came back) and the call moved to another."""

    kind: str            # input | output
    device: str          # the name now in use
    reason: str          # why, in words
    t: float = field(default_factory=_now)


@dataclass(frozen=True)
class LogLine:
    level: str   # debug | info | warning | error
    source: str  # signaling | ice | peer | call | audio | device
    text: str
    t: float = field(default_factory=_now)
