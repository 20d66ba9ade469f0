"""Helpers shared by the GUI tests: waiting on the running loop, recording bridge signals."""

from __future__ import annotations

from helpers.waits import until  # noqa: F401 (re-exported: the GUI tests' wait, letting Qt run)
from polyphone.gui.bridge import EngineBridge


class Recorder:
    """Every signal of a bridge, as (name, args) in order."""

    def __init__(self, bridge: EngineBridge) -> None:
        self.seen: list[tuple[str, tuple]] = []
        for name in ("state_changed", "connection_changed", "session_started", "pair_selected",
                     "stats_sampled", "call_error", "log_line", "levels", "turn_latency",
                     "busy_changed", "call_finished", "notice", "media_stalled", "media_resumed",
                     "audio_stats", "device_changed", "devices_listed", "check_finished",
                     "keyring_status", "caption", "captions_status", "run_event"):
            getattr(bridge, name).connect(lambda *a, _n=name: self.seen.append((_n, a)))

    def of(self, name: str) -> list[tuple]:
        return [a for n, a in self.seen if n == name]

    def states(self) -> list[str]:
        return [a[0] for a in self.of("state_changed")]
