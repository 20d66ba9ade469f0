"""Both sides of a call recognised live, each by its own recogniser process, without delaying
the call.

`DuplexCaptions` keeps one `remote.RemoteRecognizer` per side (the caller's and the agent's
phrases are recognised at the same time, not one queued behind the other: measured, the
agent's captions came ~0.9 s later than the caller's with one shared recogniser) and one
`transcribe.LiveTranscriber` per side. `start()` returns at once: the workers load their
models (0.3-1.7 s) while the call is set up, and phrases that end before they are ready wait
for them. `feed(who, samples, t)` or `attach(source, sink)` (their frame hooks) hand it the
audio. Utterances go to `on_utterance` and the recognisers' label or problem to `on_status`,
from worker threads.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import numpy as np

from .live_transcriber import LiveTranscriber
from .remote import RemoteRecognizer
from .transcribe import SIDES, TranscriptionError, Utterance

CLOSE_TIMEOUT_S = 5.0


class DuplexCaptions:
    def __init__(self, on_utterance: Callable[[Utterance], None],
                 on_status: Callable[[str, str], None], engine: str = "pocketsphinx",
                 model: str | None = None) -> None:
        self._on_utterance, self._on_status = on_utterance, on_status
        self.engine, self.model = engine, model
        self._recognizers: dict[str, RemoteRecognizer] = {}
        self._live: dict[str, LiveTranscriber] = {}
        self._hooked: list[tuple[list, Callable]] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return bool(self._live)

    def start(self) -> None:
        """Start listening (and the recognisers, the first time); blocking for a few ms only."""
        with self._lock:
            if self._live:
                return
            if not self._recognizers:
                self._recognizers = {who: RemoteRecognizer(self.engine, self.model, wait=False)
                                     for who in SIDES}
            self._live = {who: LiveTranscriber(r, self._on_utterance) for who, r in self._recognizers.items()}
        threading.Thread(target=self._announce, name="captions-ready", daemon=True).start()

    def _announce(self) -> None:
        try:
            labels = {r.label for r in list(self._recognizers.values())}
        except TranscriptionError as exc:
            self._on_status("", f"{exc.message} {exc.action}".strip())
            self.close()
            return
        self._on_status(" / ".join(sorted(labels)), "")

    def feed(self, who: str, samples: np.ndarray, t: float) -> None:
        live = self._live.get(who)
        if live is not None:
            live.feed(who, samples, t)

    def attach(self, source: Any, sink: Any) -> None:
        """Listen to a call's microphone track and speaker (their `hooks`: (samples, t) frames)."""
        for side, who in ((source, "caller"), (sink, "agent")):
            hooks = getattr(side, "hooks", None)
            if hooks is not None:
                hook = functools.partial(self.feed, who)
                hooks.append(hook)
                self._hooked.append((hooks, hook))

    def stop(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop listening and finish the phrases under way (blocking: call it off the loop)."""
        for hooks, hook in self._hooked:
            if hook in hooks:
                hooks.remove(hook)
        self._hooked = []
        with self._lock:
            live, self._live = self._live, {}
        closers = [threading.Thread(target=t.close, args=(timeout,), daemon=True) for t in live.values()]
        for c in closers:
            c.start()
        for c in closers:
            c.join(timeout + 1.0)

    def close(self) -> None:
        """stop(), and end the recogniser processes (started again by the next start())."""
        self.stop()
        with self._lock:
            recognizers, self._recognizers = self._recognizers, {}
        for r in recognizers.values():
            r.close()
