"""Call-quality warnings, like a carrier's: the network, the microphone, and an agent hearing itself.

`QualityMonitor.feed(event)` takes the engine's and the audio path's events and returns
the `QualityWarning`s to show: one with `active=True` when a figure crosses its threshold
and one with `active=False` when it has recovered. A figure must be over its threshold in
`RAISE_AFTER` consecutive samples to raise, and back under it in `CLEAR_AFTER` to clear,
so a single bad second neither flashes a warning nor hides a lasting one.

  rtt           round-trip time over 400 ms          (StatsSample, each second)
  loss          packet loss over 5 %                 (StatsSample)
  jitter        jitter over 30 ms                    (StatsSample)
  agent-echo    the agent's audio in the microphone after echo cancellation, correlation
                over 0.5                             (AudioStats.agent_echo, each second)
  mic-clipping  the microphone reached full scale in 3 or more frames a second (AudioStats)
  mic-silent    the microphone below -60 dBFS for 5 s while not muted (AudioLevels, ~10/s)
"""

from __future__ import annotations

from .events import AudioLevels, AudioStats, QualityWarning, StatsSample

THRESHOLDS = {"rtt": 400.0, "loss": 5.0, "jitter": 30.0, "agent-echo": 0.5, "mic-clipping": 3.0}
SILENT_DBFS, SILENT_S = -60.0, 5.0
RAISE_AFTER, CLEAR_AFTER = 2, 3
WORDS = {
    "rtt": ("The network is slow: the round trip is {v:.0f} ms.", "Conversation will feel laggy."),
    "loss": ("The network is losing {v:.0f} % of the audio.", "The agent may mishear you."),
    "jitter": ("The network is uneven: {v:.0f} ms of jitter.", "Audio may break up."),
    "agent-echo": ("The agent is hearing itself ({v:.2f}).", "Use a headset, or turn echo cancellation on."),
    "mic-clipping": ("Your microphone is clipping.", "Turn its input level down or move it away."),
    "mic-silent": ("Your microphone is silent.", "Check that it is plugged in, chosen and not muted."),
}


class QualityMonitor:
    def __init__(self) -> None:
        self.active: dict[str, bool] = {}
        self._over: dict[str, int] = {}
        self._under: dict[str, int] = {}
        self._quiet_since: float | None = None
        self.muted = False

    def feed(self, event: object) -> list[QualityWarning]:
        if isinstance(event, StatsSample):
            loss = event.fraction_lost * 100 / 256 if event.fraction_lost is not None else None
            return [w for w in (self._sample("rtt", event.rtt_ms), self._sample("loss", loss),
                                self._sample("jitter", event.jitter_ms)) if w]
        if isinstance(event, AudioStats):
            return [w for w in (self._sample("agent-echo", event.agent_echo),
                                self._sample("mic-clipping", float(event.mic_clipped_frames))) if w]
        if isinstance(event, AudioLevels):
            return self._levels(event)
        return []

    def _warning(self, kind: str, active: bool, value: float, threshold: float) -> QualityWarning:
        what, todo = WORDS[kind]
        text = what.format(v=value) + (f" {todo}" if active else " (recovered)")
        return QualityWarning(kind, active, round(value, 3), threshold, text)

    def _sample(self, kind: str, value: float | None) -> QualityWarning | None:
        if value is None:
            return None
        limit = THRESHOLDS[kind]
        over = value > limit if kind != "mic-clipping" else value >= limit
        if over:
            self._over[kind], self._under[kind] = self._over.get(kind, 0) + 1, 0
        else:
            self._under[kind], self._over[kind] = self._under.get(kind, 0) + 1, 0
        if not self.active.get(kind) and self._over[kind] >= RAISE_AFTER:
            self.active[kind] = True
            return self._warning(kind, True, value, limit)
        if self.active.get(kind) and self._under[kind] >= CLEAR_AFTER:
            self.active[kind] = False
            return self._warning(kind, False, value, limit)
        return None

    def _levels(self, e: AudioLevels) -> list[QualityWarning]:
        quiet = e.input_dbfs < SILENT_DBFS and not self.muted
        if not quiet:
            self._quiet_since = None
            if self.active.get("mic-silent") and e.input_dbfs > SILENT_DBFS + 10:
                self.active["mic-silent"] = False
                return [self._warning("mic-silent", False, e.input_dbfs, SILENT_DBFS)]
            return []
        if self._quiet_since is None:
            self._quiet_since = e.t
        if not self.active.get("mic-silent") and e.t - self._quiet_since >= SILENT_S:
            self.active["mic-silent"] = True
            return [self._warning("mic-silent", True, e.input_dbfs, SILENT_DBFS)]
        return []
