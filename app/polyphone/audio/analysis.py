"""Audio analysis on int16 samples: levels, voice activity, meters, turn latency,
and the measuring helpers tests and benchmarks share. numpy only, no Qt.

`VoiceActivity` is deliberately simple (an energy gate with hysteresis in time):
good enough to take turns with a person on a clean line, which is what the
local gateway's demo agent and the level meters need.
"""

from __future__ import annotations

import math

import numpy as np

from .events import AudioLevels, TurnLatency

SILENCE_FLOOR_DBFS = -120.0
"""What `level_dbfs` reports for digital silence (instead of -inf)."""

FULL_SCALE = 32768.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (a full-scale square wave is 0 dBFS).

    Empty input and digital silence give SILENCE_FLOOR_DBFS (-120), never -inf.
    """
    if samples.size == 0:
        return SILENCE_FLOOR_DBFS
    x = samples.astype(np.float32)  # a dot product: no squared temporary, ~4x faster per frame
    rms = math.sqrt(float(np.dot(x, x)) / x.size)
    if rms <= 0.0:
        return SILENCE_FLOOR_DBFS
    return max(SILENCE_FLOOR_DBFS, 20.0 * math.log10(rms / FULL_SCALE))


class VoiceActivity:
    """Energy-gated voice activity with a start hang and an end hangover.

    Feed consecutive frames (normally 20 ms of 48 kHz int16). Speech starts
    after `start_frames` consecutive frames at or above `threshold_dbfs`, and
    ends once the level has stayed below it for `hangover_ms` (so the gaps
    between words do not end a turn). `feed()` returns "start" or "end" on the
    frame where that happens, None otherwise.
    """

    def __init__(self, threshold_dbfs: float = -40.0, *, start_frames: int = 2,
                 hangover_ms: float = 300.0, sample_rate: int = 48_000) -> None:
        if start_frames < 1:
            raise ValueError("start_frames must be at least 1")
        if hangover_ms < 0 or sample_rate <= 0:
            raise ValueError("hangover_ms must be >= 0 and sample_rate > 0")
        self.threshold_dbfs = threshold_dbfs
        self.start_frames = start_frames
        self.hangover_ms = hangover_ms
        self.sample_rate = sample_rate
        self.speaking = False
        self.level = SILENCE_FLOOR_DBFS  # level of the last frame fed
        self._above = 0                  # consecutive loud frames while not speaking
        self._quiet_ms = 0.0             # quiet time accumulated while speaking

    def reset(self) -> None:
        self.speaking = False
        self._above = 0
        self._quiet_ms = 0.0

    def feed(self, samples: np.ndarray) -> str | None:
        """Take one frame; return "start", "end" or None."""
        self.level = level_dbfs(samples)
        loud = self.level >= self.threshold_dbfs
        if not self.speaking:
            self._above = self._above + 1 if loud else 0
            if self._above >= self.start_frames:
                self.speaking = True
                self._above = 0
                self._quiet_ms = 0.0
                return "start"
            return None
        if loud:
            self._quiet_ms = 0.0
            return None
        self._quiet_ms += 1000.0 * len(samples) / self.sample_rate
        if self._quiet_ms >= self.hangover_ms:
            self.speaking = False
            self._quiet_ms = 0.0
            return "end"
        return None


# --- meters ------------------------------------------------------------------------


def peak_dbfs(samples: np.ndarray) -> float:
    """Sample peak of int16 samples in dBFS (-32768 is 0 dBFS); silence gives the floor."""
    if samples.size == 0:
        return SILENCE_FLOOR_DBFS
    peak = max(int(samples.max()), -int(samples.min()))
    if peak <= 0:
        return SILENCE_FLOOR_DBFS
    return max(SILENCE_FLOOR_DBFS, 20.0 * math.log10(peak / FULL_SCALE))


class Meter:
    """One direction's level for a meter read ~10 times a second.

    Feed consecutive frames of any size. `level_dbfs` is the RMS level with
    meter ballistics: it rises at once and falls at `release_db_per_s`, so a
    reader sampling every 100 ms sees the loudest recent frame, not a random one.
    `peak_dbfs` is the sample peak, held for `peak_hold_s` and then falling at
    the same rate. Time is counted in samples fed, so no clock is needed.
    """

    def __init__(self, *, release_db_per_s: float = 30.0, peak_hold_s: float = 1.0,
                 sample_rate: int = 48_000) -> None:
        if release_db_per_s <= 0 or peak_hold_s < 0 or sample_rate <= 0:
            raise ValueError("release_db_per_s > 0, peak_hold_s >= 0 and sample_rate > 0")
        self.release_db_per_s = release_db_per_s
        self.peak_hold_s = peak_hold_s
        self.sample_rate = sample_rate
        self.reset()

    def reset(self) -> None:
        self.level_dbfs = SILENCE_FLOOR_DBFS  # smoothed RMS
        self.peak_dbfs = SILENCE_FLOOR_DBFS   # held sample peak
        self.last_dbfs = SILENCE_FLOOR_DBFS   # RMS of the last frame, unsmoothed
        self._peak_age_s = 0.0

    def feed(self, samples: np.ndarray, rms_dbfs: float | None = None) -> float:
        """Take one frame (pass `rms_dbfs` if already computed); return `level_dbfs`."""
        dt = len(samples) / self.sample_rate
        rms = level_dbfs(samples) if rms_dbfs is None else rms_dbfs
        fall = self.release_db_per_s * dt
        self.last_dbfs = rms
        self.level_dbfs = max(rms, self.level_dbfs - fall, SILENCE_FLOOR_DBFS)
        peak = peak_dbfs(samples)
        self._peak_age_s += dt
        if peak >= self.peak_dbfs:
            self.peak_dbfs, self._peak_age_s = peak, 0.0
        elif self._peak_age_s > self.peak_hold_s:
            self.peak_dbfs = max(peak, self.peak_dbfs - fall, SILENCE_FLOOR_DBFS)
        return self.level_dbfs


# --- turn latency ------------------------------------------------------------------


class _SpeechEdges:
    """A VoiceActivity plus the true times of its edges, for frames stamped with `t`.

    The detector says "start" a few frames after speech began and "end" a
    hangover after it stopped; this keeps the time of the first loud frame of
    the current run and the end of the last loud frame, so edges are dated when
    they happened, not when they were noticed.
    """

    def __init__(self, vad: VoiceActivity) -> None:
        self.vad = vad
        self._run_start: float | None = None
        self._loud_end = 0.0

    def feed(self, samples: np.ndarray, t: float) -> tuple[str | None, float]:
        edge = self.vad.feed(samples)
        if self.vad.level >= self.vad.threshold_dbfs:
            if self._run_start is None:
                self._run_start = t
            self._loud_end = t + len(samples) / self.vad.sample_rate
        else:
            self._run_start = None
        if edge == "start":
            return edge, t if self._run_start is None else self._run_start
        if edge == "end":
            return edge, self._loud_end
        return None, t


class TurnLatencyMeter:
    """End of the caller's speech -> start of the agent's reply, per turn.

    Feed either speech edges (`caller_started/stopped`, `agent_started/stopped`,
    each with the time it happened), or speaking flags (`update`), or audio
    frames stamped with the time of their first sample (`feed_caller`,
    `feed_agent`, which run a VoiceActivity per direction and date the edges).

    The two directions may be fed in any order and may lag each other (by less
    than a turn): edges are compared by their times, and the caller's end,
    which a VAD reports a hangover late, may arrive after the reply's start.

    A reply is agent speech that starts at or after the caller stopped. Agent
    speech that began before (overlap, or the agent talking through a
    barge-in) is not a reply, and that turn is not measured; nor is a reply
    more than `max_latency_ms` late. Measured turns are numbered 1, 2, ...;
    each returns a `TurnLatency` dated at the start of the reply.
    """

    def __init__(self, *, max_latency_ms: float = 20_000.0,
                 caller_vad: VoiceActivity | None = None,
                 agent_vad: VoiceActivity | None = None) -> None:
        self.max_latency_ms = max_latency_ms
        self.caller = _SpeechEdges(caller_vad if caller_vad is not None else VoiceActivity())
        self.agent = _SpeechEdges(agent_vad if agent_vad is not None else VoiceActivity())
        self.turns = 0
        self.last: TurnLatency | None = None
        self.caller_speaking = False
        self.agent_speaking = False
        self._caller_end: float | None = None    # caller stopped here, no reply yet
        self._agent_start: float | None = None   # latest agent start not matched to a turn

    # edges
    def caller_started(self, t: float) -> None:
        self.caller_speaking = True
        self._caller_end = None

    def caller_stopped(self, t: float) -> TurnLatency | None:
        self.caller_speaking = False
        start, self._agent_start = self._agent_start, None
        if start is not None and start >= t:   # the reply was noticed before the end was
            return self._measured(t, start)
        self._caller_end = None if self.agent_speaking else t
        return None

    def agent_started(self, t: float) -> TurnLatency | None:
        self.agent_speaking = True
        end = self._caller_end
        if end is not None and not self.caller_speaking and t >= end:
            self._caller_end = self._agent_start = None
            return self._measured(end, t)
        self._agent_start = t   # may turn out to be a reply once the caller's end is known
        return None

    def agent_stopped(self, t: float) -> None:
        self.agent_speaking = False

    def _measured(self, end: float, start: float) -> TurnLatency | None:
        latency_ms = 1000.0 * (start - end)
        if latency_ms > self.max_latency_ms:
            return None
        self.turns += 1
        self.last = TurnLatency(self.turns, latency_ms, t=start)
        return self.last

    # flags
    def update(self, t: float, caller_speaking: bool, agent_speaking: bool) -> TurnLatency | None:
        """Speaking flags of both directions at time `t`; edges are dated `t`."""
        event = None
        if caller_speaking != self.caller_speaking:
            if caller_speaking:
                self.caller_started(t)
            else:
                event = self.caller_stopped(t)
        if agent_speaking != self.agent_speaking:
            if agent_speaking:
                event = self.agent_started(t) or event
            else:
                self.agent_stopped(t)
        return event

    # frames
    def feed_caller(self, samples: np.ndarray, t: float) -> TurnLatency | None:
        """One frame of the caller (microphone), `t` = time of its first sample."""
        edge, when = self.caller.feed(samples, t)
        if edge == "start":
            self.caller_started(when)
        elif edge == "end":
            return self.caller_stopped(when)
        return None

    def feed_agent(self, samples: np.ndarray, t: float) -> TurnLatency | None:
        """One frame of the agent (as played), `t` = time of its first sample."""
        edge, when = self.agent.feed(samples, t)
        if edge == "start":
            return self.agent_started(when)
        if edge == "end":
            self.agent_stopped(when)
        return None


class CallMeters:
    """Both directions of a call: meters, voice activity and turn latency in one place.

    `feed_input(samples, t)` takes the caller's microphone audio, `feed_output`
    the agent's audio as played; each may return a `TurnLatency`. `snapshot(t)`
    gives the `AudioLevels` event for the meters (call it ~10 times a second).
    """

    def __init__(self, *, vad_threshold_dbfs: float = -40.0, hangover_ms: float = 300.0,
                 sample_rate: int = 48_000) -> None:
        self.input = Meter(sample_rate=sample_rate)
        self.output = Meter(sample_rate=sample_rate)
        def vad() -> VoiceActivity:
            return VoiceActivity(vad_threshold_dbfs, hangover_ms=hangover_ms, sample_rate=sample_rate)

        self.turns = TurnLatencyMeter(caller_vad=vad(), agent_vad=vad())

    def feed_input(self, samples: np.ndarray, t: float) -> TurnLatency | None:
        event = self.turns.feed_caller(samples, t)
        self.input.feed(samples, self.turns.caller.vad.level)
        return event

    def feed_output(self, samples: np.ndarray, t: float) -> TurnLatency | None:
        event = self.turns.feed_agent(samples, t)
        self.output.feed(samples, self.turns.agent.vad.level)
        return event

    def snapshot(self, t: float) -> AudioLevels:
        return AudioLevels(self.input.level_dbfs, self.output.level_dbfs,
                           self.turns.caller.vad.speaking, self.turns.agent.vad.speaking, t=t)


# --- measuring helpers (tests, benchmarks) -------------------------------------------


def best_lag_correlation(sent: np.ndarray, received: np.ndarray, max_lag_s: float = 1.0,
                         rate: int = 48_000) -> tuple[float, float]:
    """(normalised correlation, lag in seconds) of `received` against `sent`.

    Finds the lag in [0, max_lag_s] where `received` best matches a delayed
    `sent` (FFT cross-correlation), then returns the normalised correlation of
    the overlapping parts at that lag: 1.0 is a perfect (scaled) copy.
    """
    a = np.asarray(sent, dtype=np.float64)
    b = np.asarray(received, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    xc = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    max_lag = max(0, min(int(max_lag_s * rate), len(b) - 1))
    lag = int(np.argmax(xc[:max_lag + 1]))
    seg_b = b[lag:lag + len(a)]
    seg_a = a[:len(seg_b)]
    denom = math.sqrt(float(np.dot(seg_a, seg_a)) * float(np.dot(seg_b, seg_b)))
    if denom == 0:
        return 0.0, lag / rate
    return float(np.dot(seg_a, seg_b)) / denom, lag / rate


def segment_correlation(sent: np.ndarray, received: np.ndarray, lag_s: float, *,
                        segment_s: float = 0.1, slack_s: float = 0.03,
                        rate: int = 48_000) -> float:
    """Median, over the loud segments of `sent`, of each one's best normalised correlation
    with `received` within `slack_s` of `lag_s`.

    One lag for a whole clip is too strict for audio that went through a playout buffer:
    a 0.5 % clock-drift correction moves the words by 15 ms over 3 s and the clip-wide
    correlation collapses although every word is intact. Segment by segment it does not.
    Returns 0.0 when `sent` has no loud segment.
    """
    a = np.asarray(sent, dtype=np.float64)
    b = np.asarray(received, dtype=np.float64)
    seg, slack, lag = int(segment_s * rate), int(slack_s * rate), int(round(lag_s * rate))
    floor = float(np.sqrt(np.mean(a * a))) * 0.3 if len(a) else 0.0
    scores = []
    for start in range(0, len(a) - seg + 1, seg):
        x = a[start:start + seg]
        if float(np.sqrt(np.mean(x * x))) < floor or floor == 0.0:
            continue  # a pause: nothing to recognise
        lo, hi = max(0, start + lag - slack), start + lag + slack + seg
        if hi <= 0:
            continue  # with a negative lag this word was sent before the recording began
        y = b[lo:hi]
        if len(y) < seg:
            continue
        n = 1 << int(np.ceil(np.log2(len(y) + seg)))
        xc = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)[:len(y) - seg + 1]
        energy = np.convolve(y * y, np.ones(seg), mode="valid")  # of each window of y
        norm = np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(x, x)))
        scores.append(float(np.max(xc / norm)))
    return float(np.median(scores)) if scores else 0.0


def click_times(samples: np.ndarray, rate: int = 48_000, threshold_dbfs: float = -30.0,
                min_gap_s: float = 0.1) -> list[float]:
    """Onset times (s) of short loud events (clicks, chirps) in a recording.

    An onset is the first sample whose magnitude reaches `threshold_dbfs`
    (sample peak, not RMS) after at least `min_gap_s` below it, so a chirp's
    own oscillation or a codec's ringing counts once.
    """
    if len(samples) == 0:
        return []
    level = FULL_SCALE * 10 ** (threshold_dbfs / 20.0)
    x = np.asarray(samples)
    loud = np.flatnonzero((x >= level) | (x <= -level))
    if loud.size == 0:
        return []
    gap = max(1, int(min_gap_s * rate))
    first = np.concatenate(([True], np.diff(loud) > gap))
    return [float(i) / rate for i in loud[first]]


SpeechEdges = _SpeechEdges  # public name for users outside this module (scripted runs)
