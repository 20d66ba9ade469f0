"""The demo agent's keypad: the caller's DTMF digits heard, logged and answered.

The gateway spec has no telephone-event, so keypresses arrive as tones in the
caller's audio (`audio.dtmf`). `Keypad` runs a detector on every caller frame and
collects the digits until REPLY_AFTER_S passes without a new one; then it logs the
sequence once (`session …: caller pressed 1234#`) and has the agent answer: "You
pressed 1 2 3 4 hash" in the spoken voice (`speech.voice`, rendered in a worker
thread), or, when that cannot be had, the same tones played back.

Tones are not speech: `KeypadTurns` is the demo agent's `TurnTaker` except that a
caller turn during which a digit was heard is forgotten instead of said back (a
turn that mixes words and keypresses is forgotten whole), and the keypad's reply
goes out the way a spoken reply does (it counts in `turns`, a barge-in stops it).
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from ..aio import cancel_all
from ..audio.dtmf import DtmfDetector, tones
from ..audio.files import SAMPLE_RATE
from .turns import AgentState, TurnTaker

log = logging.getLogger(__name__)

REPLY_AFTER_S = 1.5   # a sequence ends after this long without a new digit
SAME_TURN_S = 0.1     # a digit heard this shortly before the caller's turn began belongs to it
ECHO_GUARD_S = 0.5    # while tones we play (and this long after) could come back, digits are not taken
SPOKEN = {"*": "star", "#": "hash"}


def spoken(digits: str) -> str:
    """What the agent says for a sequence: "You pressed 1 2 star hash"."""
    return "You pressed " + " ".join(SPOKEN.get(d, d) for d in digits)


def reply_audio(digits: str) -> tuple[np.ndarray, str]:
    """The reply (int16 mono 48 kHz) and how it was made, "voice" or "tones".

    Blocking (the synthesis takes up to ~100 ms): run it in a worker thread."""
    try:
        from ..speech import voice  # not needed by the gateway otherwise; may be unavailable

        pcm = np.asarray(voice.render(spoken(digits), voice="en-us", rate=175))
        if pcm.dtype == np.int16 and pcm.ndim == 1 and len(pcm):
            return pcm, "voice"
        log.info("keypad: the voice gave unusable audio (%s %s); playing the tones back",
                 pcm.dtype, pcm.shape)
    except Exception as exc:
        log.info("keypad: no spoken reply (%s: %s); playing the tones back", type(exc).__name__, exc)
    return tones(digits), "tones"


class KeypadTurns(TurnTaker):
    """A TurnTaker that forgets the caller's keypad turns and plays the keypad's replies.

    `last_digit_at` is set by the Keypad; `keypad_turns` counts the turns forgotten.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.turn_started: float | None = None
        self.last_digit_at: float | None = None
        self.keypad_turns = 0
        self._queued: np.ndarray | None = None

    def hear(self, samples: np.ndarray, now: float) -> str | None:
        continues = self.state is AgentState.THINKING and self._queued is None
        event = super().hear(samples, now)
        if event in ("start", "barge-in"):
            self._queued = None   # the caller speaks first; a reply not begun yields, as any does
            if not continues:
                self.turn_started = now
        if event == "end" and self._was_keypad():
            self._take_utterance()
            self.reply_due = None
            self.state = AgentState.LISTENING
            self.keypad_turns += 1
            event = "keypad"
        return event

    def _was_keypad(self) -> bool:
        return (self.last_digit_at is not None and self.turn_started is not None
                and self.last_digit_at >= self.turn_started - SAME_TURN_S)

    def queue_reply(self, pcm: np.ndarray, now: float) -> bool:
        """Say `pcm` next, as a reply; False (nothing queued) while the line is busy:
        the agent speaking or about to, or the caller speaking."""
        if self.state is not AgentState.LISTENING or self.caller_speaking:
            return False
        self._queued = pcm
        self.state = AgentState.THINKING
        self.reply_due = now
        return True

    def _take_utterance(self) -> np.ndarray:
        if self._queued is not None:
            pcm, self._queued = self._queued, None
            return pcm
        return super()._take_utterance()


class Keypad:
    """Hears the caller's digits (one `hear()` per caller frame) and answers each sequence.

    `sequences`: every sequence heard, in order; `replies`: the replies queued, with
    `reply_kinds` saying how each was made ("voice" or "tones").
    """

    def __init__(self, turns: KeypadTurns, session_id: str | None = None) -> None:
        self.turns = turns
        self.session_id = session_id
        self.detector = DtmfDetector(SAMPLE_RATE)
        self.digits = ""                      # the sequence being collected
        self.sequences: list[str] = []
        self.reply_kinds: list[str] = []
        self._deaf_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._waiting: list[tuple[np.ndarray, str]] = []   # replies the line was too busy for

    @property
    def replies(self) -> int:
        return len(self.reply_kinds)

    def hear(self, mono: np.ndarray, now: float) -> None:
        """Take one caller frame (int16 mono, 48 kHz)."""
        found = self.detector.feed(mono)
        if found:
            self.turns.last_digit_at = now   # even when not taken: tones are never said back
            if now >= self._deaf_until:
                self.digits += "".join(found)
                self._restart_timer()
        self._send_waiting(now)

    def _restart_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(REPLY_AFTER_S, self._sequence_done)

    def _sequence_done(self) -> None:
        self._timer = None
        digits, self.digits = self.digits, ""
        if not digits:
            return
        self.sequences.append(digits)
        log.info("session %s: caller pressed %s", self.session_id or "?", digits)
        task = asyncio.ensure_future(self._answer(digits))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, digits: str) -> None:
        pcm, kind = await asyncio.to_thread(reply_audio, digits)
        self._waiting.append((pcm, kind))
        self._send_waiting(time.monotonic())   # the clock the agent's frames are timed by

    def _send_waiting(self, now: float) -> None:
        if not self._waiting:
            return
        pcm, kind = self._waiting[0]
        if not self.turns.queue_reply(pcm, now):
            return
        self._waiting.pop(0)
        self.reply_kinds.append(kind)
        if kind == "tones":   # our own tones could come back through the caller's microphone
            self._deaf_until = now + len(pcm) / SAMPLE_RATE + ECHO_GUARD_S

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await cancel_all(list(self._tasks))
