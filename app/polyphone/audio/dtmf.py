"""In-band DTMF (keypad tones): making them and hearing them as plain audio.

The gateway's spec names no telephone-event payload (RFC 4733), so a keypress
travels the way a phone line carries it: two sines summed into the audio, one
from the low group (the keypad's row) and one from the high group (its column),
through Opus like any other sound. numpy only.

    tones("12#")                    int16 mono, 48 kHz, ready to send
    DtmfDetector().feed(samples)    the digits completed in this chunk
"""

from __future__ import annotations

import math

import numpy as np

DIGITS = "123A456B789C*0#D"
"""The keypad, row by row: digit `DIGITS[4 * row + column]` is LOW_HZ[row] + HIGH_HZ[column]."""
LOW_HZ = (697.0, 770.0, 852.0, 941.0)
HIGH_HZ = (1209.0, 1336.0, 1477.0, 1633.0)

MIN_TONE_MS = 40.0  # ITU-T Q.24: the shortest tone and the shortest pause a receiver must take
MIN_GAP_MS = 40.0
RAMP_MS = 3.0       # raised-cosine fade in and out, so a tone starts and stops without a click


def frequencies(digit: str) -> tuple[float, float]:
    """The (low, high) pair of one digit; lowercase a-d are A-D."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit (use one of {DIGITS}, or a-d)")
    return LOW_HZ[index // 4], HIGH_HZ[index % 4]


def tones(digits: str, *, tone_ms: float = 100.0, gap_ms: float = 100.0, level_dbfs: float = -10.0,
          twist_db: float = 2.0, sample_rate: int = 48_000) -> np.ndarray:
    """The digits as int16 mono audio: each a `tone_ms` tone, `gap_ms` of silence between two.

    `level_dbfs` is the peak of each two-tone sum (at most 0: never clipped); the high
    tone is `twist_db` louder than the low one, as a phone sends it. Raises ValueError
    for a character outside DIGITS (a-d also accepted), or a tone or gap under Q.24's 40 ms.
    """
    for name, value, least in (("tone_ms", tone_ms, MIN_TONE_MS), ("gap_ms", gap_ms, MIN_GAP_MS)):
        if not value >= least:
            raise ValueError(f"{name}={value:g}: DTMF tones and the gaps between them must last "
                             f"at least {least:g} ms (ITU-T Q.24)")
    if not level_dbfs <= 0.0:
        raise ValueError(f"level_dbfs={level_dbfs:g}: the peak must be at most 0 dBFS")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate={sample_rate}: DTMF needs at least 8000 Hz")
    pairs = [frequencies(d) for d in digits]
    n_tone = round(tone_ms * sample_rate / 1000)
    n_gap = round(gap_ms * sample_rate / 1000)
    peak = 32767.0 * 10 ** (level_dbfs / 20)
    high_share = 10 ** (twist_db / 20)
    a_low = peak / (1.0 + high_share)
    a_high = peak - a_low
    t = np.arange(n_tone) / sample_rate
    envelope = _envelope(n_tone, round(RAMP_MS * sample_rate / 1000))
    out = np.zeros(max(0, len(pairs) * (n_tone + n_gap) - n_gap), np.int16)
    for i, (low, high) in enumerate(pairs):
        wave = a_low * np.sin(2 * math.pi * low * t) + a_high * np.sin(2 * math.pi * high * t)
        start = i * (n_tone + n_gap)
        out[start:start + n_tone] = np.round(wave * envelope).astype(np.int16)
    return out


def _envelope(n: int, ramp: int) -> np.ndarray:
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        env[:ramp] = rise
        env[n - ramp:] = rise[::-1]
    return env


# --- detection -------------------------------------------------------------------------

RATE = 8000          # the detector works at telephone rate
STEP = 80            # 10 ms: one analysis per step...
WINDOW = 2 * STEP    # ...of the last 20 ms (50 Hz resolution)
CONFIRM_WINDOWS = 2  # a digit is reported once shown by 2 consecutive windows (>= 30 ms of tone)
REARM_WINDOWS = 4    # ...and again only after 4 windows without it (a 15 ms break is bridged)

PEAK_DB = 6.0              # the chosen tone above every other tone of its group
TWIST_DB = (-4.0, 8.0)     # high tone relative to low tone
FREQ_TOLERANCE = 0.025     # off by at most 2.5 % (Q.24: take 1.5 %, refuse 3.5 %)
STEADY_DB = 6.0            # the tone's level in the window's two halves within 6 dB
MIN_SHARE = 0.7            # the two tones hold at least 70 % of the window's energy
MIN_TONE_DBFS = -50.0      # each tone at least this loud (a full-scale sine is -3 dBFS)

_ALL_HZ = np.array(LOW_HZ + HIGH_HZ)
_OMEGA = 2 * np.pi * _ALL_HZ / RATE
_HALF_BASIS = np.exp(-1j * np.outer(np.arange(STEP), _OMEGA))   # (STEP, 8): a DFT bin per tone
_HALF_SHIFT = np.exp(-1j * _OMEGA * STEP)                         # the second half's phase offset
_MIN_POWER = 10 ** (MIN_TONE_DBFS / 10)
_QUIET_POWER = _MIN_POWER / 1000   # 30 dB under the quietest tone taken


def _lowpass(factor: int) -> np.ndarray:
    """A windowed-sinc low-pass (3.4 kHz at `factor` x 8 kHz, Hamming), unity gain at DC."""
    n = 16 * factor + 1
    k = np.arange(n) - (n - 1) / 2
    taps = np.sinc(2 * 3400.0 / (RATE * factor) * k) * np.hamming(n)
    return taps / taps.sum()


def _tone_in_group(halves: np.ndarray, whole_power: np.ndarray, group: slice) -> int | None:
    """The index (into _ALL_HZ) of the group's one strong, steady tone, or None."""
    powers = whole_power[group]
    order = np.argsort(powers)
    best, runner_up = powers[order[-1]], powers[order[-2]]
    if best < _MIN_POWER or best < runner_up * 10 ** (PEAK_DB / 10):
        return None
    k = group.start + int(order[-1])
    first, second = abs(halves[0, k]) ** 2, abs(halves[1, k]) ** 2
    if min(first, second) * 10 ** (STEADY_DB / 10) < max(first, second):
        return None
    return k


def _measured_hz(halves: np.ndarray, k: int) -> float:
    """The tone's real frequency near _ALL_HZ[k], from the phase it turns by in one step."""
    turn = np.angle(halves[1, k] * np.conj(halves[0, k])) - _OMEGA[k] * STEP
    turn = (turn + np.pi) % (2 * np.pi) - np.pi   # unambiguous within +-50 Hz
    return float(_ALL_HZ[k] + turn * RATE / (2 * np.pi * STEP))


def _power_at(window: np.ndarray, hz: float) -> float:
    """Power of the sine at `hz` in the window (a full-scale sine is 0.5)."""
    x = np.dot(window, np.exp(-2j * np.pi * hz / RATE * np.arange(len(window))))
    return float(2 * abs(x) ** 2 / len(window) ** 2)


def classify(window: np.ndarray) -> str | None:
    """The digit one 20 ms window (WINDOW samples at 8 kHz, full scale 1.0) shows, or None.

    The rules, all of which must hold:
    1. in each group, the strongest tone is PEAK_DB above the group's others, at least
       MIN_TONE_DBFS, and steady: its level in the window's two halves within STEADY_DB
       (a window that only catches a tone's start or end shows nothing);
    2. each tone's real frequency, measured from the phase it turns by between the two
       halves, is within FREQ_TOLERANCE of the nominal one;
    3. the twist (high tone over low, measured at the real frequencies) is within TWIST_DB;
    4. the two tones hold MIN_SHARE of the window's energy: speech and music, whose energy
       is spread over many frequencies, fail here.
    """
    total = float(np.dot(window, window)) / len(window)
    if total < 2 * _MIN_POWER:
        return None
    halves = window.reshape(2, STEP) @ _HALF_BASIS
    whole_power = 2 * np.abs(halves[0] + halves[1] * _HALF_SHIFT) ** 2 / WINDOW ** 2
    picked = [_tone_in_group(halves, whole_power, slice(0, 4)),
              _tone_in_group(halves, whole_power, slice(4, 8))]
    if None in picked:
        return None
    low, high = picked
    hz = [_measured_hz(halves, k) for k in (low, high)]
    if any(abs(f - _ALL_HZ[k]) > FREQ_TOLERANCE * _ALL_HZ[k] for f, k in zip(hz, (low, high))):
        return None
    p_low, p_high = _power_at(window, hz[0]), _power_at(window, hz[1])
    if min(p_low, p_high) < _MIN_POWER:
        return None
    twist = 10 * math.log10(p_high / p_low)
    if not TWIST_DB[0] <= twist <= TWIST_DB[1] or p_low + p_high < MIN_SHARE * total:
        return None
    return DIGITS[4 * low + (high - 4)]


class DtmfDetector:
    """Hears keypad digits in a stream of int16 mono audio, fed in chunks of any size.

    The audio is low-passed and decimated to 8 kHz; every 10 ms the last 20 ms (a
    window) is analysed by single-bin DFTs at the eight DTMF frequencies (what the
    Goertzel algorithm computes) and shows one digit or none (`classify`: a strong
    steady tone in each group, each within 2.5 % of its frequency, twist from -4 dB to
    +8 dB, the pair holding 70 % of the energy). A digit is reported once, when two
    consecutive windows show it (30 ms of steady tone or more: a Q.24 40 ms tone always
    is, a 20 ms burst never), and again only after four windows in a row that do not (a
    window that catches a tone's edge shows nothing, so a 30 ms pause always gives
    four, Q.24's 40 ms five or six, while a break of up to 15 ms is bridged). `feed()`
    returns a digit 30-45 ms after its tone starts (20 ms chunks).
    """

    def __init__(self, sample_rate: int = 48_000) -> None:
        if sample_rate < RATE or sample_rate % RATE:
            raise ValueError(f"sample_rate={sample_rate}: a multiple of {RATE} Hz is needed")
        self.factor = sample_rate // RATE
        self._taps = _lowpass(self.factor) if self.factor > 1 else np.ones(1)
        self.reset()

    def reset(self) -> None:
        """Forget the audio and the digit in progress."""
        self._raw = np.zeros(len(self._taps) - 1)   # input not yet decimated (history first)
        self._slow = np.zeros(0)                     # 8 kHz samples not yet analysed
        self._shown: str | None = None               # what the last window showed
        self._run = 0                                # ...in how many windows in a row
        self._reported: str | None = None            # the digit reported and not yet re-armed
        self._absent = 0                             # windows since it was last shown
        self.windows = 0
        self.heard = ""                              # every digit reported so far

    def feed(self, samples: np.ndarray) -> list[str]:
        """Take the next chunk; the digits whose tone was confirmed in it, in order."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1) / 32768.0
        self._slow = np.concatenate([self._slow, self._decimate(x)])
        found: list[str] = []
        while len(self._slow) >= WINDOW:
            digit = self._track(classify(self._slow[:WINDOW]))
            self._slow = self._slow[STEP:]
            self.windows += 1
            if digit is not None:
                found.append(digit)
        self.heard += "".join(found)
        return found

    def _decimate(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._raw, x])
        n_taps = len(self._taps)
        count = (len(buf) - n_taps) // self.factor + 1 if len(buf) >= n_taps else 0
        self._raw = buf[count * self.factor:]
        if count == 0 or float(np.dot(buf, buf)) < _QUIET_POWER * len(buf):
            return np.zeros(count)   # far below what `classify` looks at: not worth filtering
        return np.convolve(buf, self._taps, "valid")[::self.factor][:count]

    def _track(self, shown: str | None) -> str | None:
        self._run = self._run + 1 if shown == self._shown else 1
        self._shown = shown
        if shown is not None and shown == self._reported:
            self._absent = 0
            return None
        if self._reported is not None:
            self._absent += 1
            if self._absent >= REARM_WINDOWS:
                self._reported = None
        if shown is not None and self._run >= CONFIRM_WINDOWS:
            self._reported, self._absent = shown, 0
            return shown
        return None
