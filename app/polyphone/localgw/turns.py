"""The demo agent's turn-taking, as pure logic: caller frames in, agent frames out.

No asyncio, no sockets, no clock: every call is given `now` (seconds, any
monotonic origin), so tests drive it frame by frame. The media side
(`agents.DemoAgent`) feeds it the caller's audio and pulls the agent's audio.

The conversation: the agent says its greeting; the caller speaks; once the
caller has been quiet for the voice-activity hangover the utterance is over,
and after `think_ms` more the agent says the utterance back. If the caller
starts speaking while the agent talks (a barge-in), the agent stops at once and
listens. If the caller resumes during the think time, the pending reply is held
and the new speech joins the same utterance.
"""

from __future__ import annotations

import collections
import enum

import numpy as np

from ..audio.analysis import VoiceActivity, level_dbfs

SAMPLE_RATE = 48_000
TAIL_MS = 60           # kept after the last loud frame, so words are not clipped
PREROLL_FRAMES = 4     # kept before speech is declared (the VAD needs a few frames); the reply
                       # starts at the first loud one, so it has no dead air before its first word


class AgentState(str, enum.Enum):
    SPEAKING = "speaking"    # playing the greeting or a reply
    LISTENING = "listening"  # silent, waiting for (or hearing) the caller
    THINKING = "thinking"    # the caller finished; reply due at `reply_due`


class TurnTaker:
    """Decides, frame by frame, what the demo agent says.

    Counters for tests and logs: `turns` (replies started), `barge_ins`
    (times the caller interrupted the agent), `utterances` (caller turns heard).
    """

    def __init__(self, greeting: np.ndarray | None = None, *, think_ms: float = 600.0,
                 vad: VoiceActivity | None = None, max_utterance_s: float = 15.0,
                 sample_rate: int = SAMPLE_RATE) -> None:
        self.think_s = think_ms / 1000.0
        self.vad = vad if vad is not None else VoiceActivity(sample_rate=sample_rate)
        self.sample_rate = sample_rate
        self._max_samples = int(max_utterance_s * sample_rate)
        self._tail = int(TAIL_MS * sample_rate / 1000)
        self._preroll: collections.deque[np.ndarray] = collections.deque(maxlen=PREROLL_FRAMES)
        self._utterance: list[np.ndarray] = []
        self._utterance_len = 0
        self._voiced_len = 0     # samples up to the end of the last loud frame
        self._playing: np.ndarray | None = None
        self._pos = 0
        self.reply_due: float | None = None
        self.turns = 0
        self.barge_ins = 0
        self.utterances = 0
        self.marks: collections.deque[tuple[str, float]] = collections.deque(maxlen=64)  # (what, now)
        self.state = AgentState.LISTENING
        if greeting is not None and len(greeting):
            self._play(np.asarray(greeting, np.int16))

    # --- caller side ------------------------------------------------------------

    @property
    def caller_speaking(self) -> bool:
        return self.vad.speaking

    def hear(self, samples: np.ndarray, now: float) -> str | None:
        """Take one frame of the caller's audio. Returns "barge-in", "start", "end" or None."""
        samples = np.asarray(samples, np.int16)
        transition = self.vad.feed(samples)
        event: str | None = None
        if transition == "start":
            event = self._on_speech_start()
        elif not self.vad.speaking and transition is None:
            self._preroll.append(samples)
        if self.vad.speaking or transition == "end":
            self._record(samples, loud=self.vad.level >= self.vad.threshold_dbfs)
        if transition == "end":
            self.utterances += 1
            self.state = AgentState.THINKING
            self.reply_due = now + self.think_s
            self.marks.append(("end-heard", now))
            event = "end"
        return event

    def _on_speech_start(self) -> str:
        event = "start"
        if self.state is AgentState.SPEAKING:
            self.barge_ins += 1
            self._playing = None
            event = "barge-in"
        if self.state is not AgentState.THINKING:
            # A new utterance (while thinking, the caller continues the last one).
            self._utterance.clear()
            self._utterance_len = self._voiced_len = 0
        self.state = AgentState.LISTENING
        self.reply_due = None
        loud = [level_dbfs(c) >= self.vad.threshold_dbfs for c in self._preroll]
        lead = loud.index(True) if True in loud else len(loud)
        for chunk in list(self._preroll)[lead:]:  # from the first loud frame that led to "start"
            self._record(chunk, loud=True)
        self._preroll.clear()
        return event

    def _record(self, samples: np.ndarray, *, loud: bool) -> None:
        room = self._max_samples - self._utterance_len
        if room <= 0:
            return
        chunk = samples[:room]
        self._utterance.append(chunk)
        self._utterance_len += len(chunk)
        if loud:
            self._voiced_len = self._utterance_len

    # --- agent side -------------------------------------------------------------

    def speak(self, n_samples: int, now: float) -> np.ndarray:
        """The agent's next `n_samples` (silence when it has nothing to say)."""
        if self.state is AgentState.THINKING and self.reply_due is not None and now >= self.reply_due:
            reply = self._take_utterance()
            self.reply_due = None
            if len(reply):
                self.turns += 1
                self.marks.append(("reply", now))
                self._play(reply)
            else:
                self.state = AgentState.LISTENING
        if self.state is AgentState.SPEAKING and self._playing is not None:
            chunk = self._playing[self._pos:self._pos + n_samples]
            self._pos += n_samples
            if self._pos >= len(self._playing):
                self._playing = None
                self.state = AgentState.LISTENING
            if len(chunk) < n_samples:
                chunk = np.concatenate([chunk, np.zeros(n_samples - len(chunk), np.int16)])
            return chunk
        return np.zeros(n_samples, np.int16)

    def _play(self, samples: np.ndarray) -> None:
        self._playing = samples
        self._pos = 0
        self.state = AgentState.SPEAKING

    def _take_utterance(self) -> np.ndarray:
        if not self._utterance:
            return np.zeros(0, np.int16)
        pcm = np.concatenate(self._utterance)[:self._voiced_len + self._tail]
        self._utterance.clear()
        self._utterance_len = self._voiced_len = 0
        return pcm
