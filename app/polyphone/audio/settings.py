"""The audio of one call, as settings: devices, processing, volume, recording, playout bounds.

Its own module (no numpy, no PortAudio) so that the application layer can fill it in from
the person's Settings without loading the audio stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class AudioSettings:
    input_device: str | None = None     # a device id from audio.devices; None: the system default
    output_device: str | None = None
    echo_cancellation: bool = True
    noise_suppression: bool = True
    gain_control: bool = True
    volume: float = 1.0
    record_path: Path | None = None     # stereo WAV of the call (caller left, agent right)
    min_playout_ms: float = 40
    max_playout_ms: float = 200
