"""Speech recognition of both sides of a call (polyphone.speech.transcribe, .sphinx), on real
speech: the phrases are spoken by espeak-ng (polyphone.speech.voice) and recognised by
pocketsphinx. The figures (word error rate, real-time factor, caption lag) are printed; run with
-s to see them.
"""

from __future__ import annotations

import threading
import time
from functools import cache

import numpy as np
import pytest
import soxr

from polyphone.audio.files import FRAME_SAMPLES, SAMPLE_RATE, tone
from polyphone.speech.live_transcriber import LiveTranscriber
from polyphone.speech.phrases import phrases, transcribe_pcm
from polyphone.speech.score import normalise, wer
from polyphone.speech.sphinx import SphinxRecognizer
from polyphone.speech.transcribe import ENGINES, TranscriptionError, Utterance, make_recognizer
from polyphone.speech.voice import render

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
T0 = 5000.0   # the monotonic time the test streams start at

# Measured here (espeak-ng en-us at 175 words a minute, pocketsphinx 5.0.4 en-us, in this order
# by a fresh recogniser): overall WER 0.167; the first six right, then 0.29 ("good morning how
# can i like you you") and 1.0 ("and you really must go by"). The bounds leave room for another
# espeak-ng or pocketsphinx build; the first three phrases (the brief's) are held one by one.
PHRASES = ["book a table for two", "what time do you open", "cancel my order",
           "i want to speak to a manager", "can you repeat that please", "i lost my credit card",
           "good morning how can i help you", "thank you very much goodbye"]
MAX_OVERALL_WER = 0.35
MAX_PHRASE_WER = 0.4


@cache
def spoken(text: str) -> np.ndarray:
    return render(text)


def at_16k(pcm48k: np.ndarray) -> np.ndarray:
    return soxr.resample(pcm48k, SAMPLE_RATE, 16_000)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), np.int16)


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    pad = (-pcm.size) % FRAME_SAMPLES
    pcm = np.concatenate([pcm, np.zeros(pad, np.int16)])
    return list(pcm.reshape(-1, FRAME_SAMPLES))


def stream(parts: list[float | str]) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Silences (seconds) and phrases (text) one after the other: the audio, and each phrase's
    (text, start, end) in seconds from the stream's start."""
    chunks, said, at = [], [], 0.0
    for part in parts:
        pcm = silence(part) if isinstance(part, float) else spoken(part)
        if isinstance(part, str):
            said.append((part, at, at + pcm.size / SAMPLE_RATE))
        chunks.append(pcm)
        at += pcm.size / SAMPLE_RATE
    return np.concatenate(chunks), said


class Recording:
    """What a LiveTranscriber emits, with the thread it came from."""

    def __init__(self) -> None:
        self.utterances: list[Utterance] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, utterance: Utterance) -> None:
        with self.lock:
            self.utterances.append(utterance)
            self.threads.add(threading.current_thread().name)


class Counting:
    """A recogniser that records every call and answers `text`; `gate` holds each call."""

    name, label, sample_rate = "counting", "counting (test)", 16_000

    def __init__(self, text: str = "words", gate: threading.Event | None = None) -> None:
        self.text, self.gate, self.calls = text, gate, []

    def transcribe(self, pcm16k: np.ndarray) -> str:
        self.calls.append(pcm16k.size / self.sample_rate)
        if self.gate is not None:
            self.gate.wait(10)
        return self.text


@pytest.fixture(scope="module")
def recognizer() -> SphinxRecognizer:
    return make_recognizer("pocketsphinx")


# --- the recogniser ---------------------------------------------------------------------


def test_make_recognizer_names_the_engines():
    assert list(ENGINES) == ["pocketsphinx", "whisper"]
    with pytest.raises(TranscriptionError) as caught:
        make_recognizer("whisper-huge")
    assert '"whisper-huge"' in caught.value.message and "pocketsphinx" in caught.value.action


def test_pocketsphinx_recognises_spoken_phrases():
    started = time.perf_counter()
    sphinx = make_recognizer()   # a fresh one: its adaptation to the line starts from nothing
    loaded = time.perf_counter() - started
    assert (sphinx.name, sphinx.sample_rate) == ("pocketsphinx", 16_000)
    assert sphinx.label == "pocketsphinx (offline, lower accuracy)"
    results, busy, audio = [], 0.0, 0.0
    for text in PHRASES:
        pcm16k = at_16k(spoken(text))
        started = time.perf_counter()
        results.append((text, sphinx.transcribe(pcm16k)))
        busy += time.perf_counter() - started
        audio += pcm16k.size / 16_000
    words = sum(len(normalise(text)) for text in PHRASES)
    overall = sum(wer(text, heard) * len(normalise(text)) for text, heard in results) / words
    for text, heard in results:
        print(f"{text!r:40} -> {heard!r:40} WER {wer(text, heard):.2f}")
    print(f"overall WER {overall:.3f}; real-time factor {busy / audio:.2f} "
          f"({audio:.1f} s of speech); model load {loaded:.2f} s")
    assert all(wer(text, heard) <= MAX_PHRASE_WER for text, heard in results[:3]), results
    assert overall <= MAX_OVERALL_WER


def test_the_decoder_says_nothing(capfd):
    sphinx = make_recognizer()
    assert sphinx.transcribe(at_16k(spoken("cancel my order"))) == "cancel my order"
    out, err = capfd.readouterr()
    assert out + err == ""   # its log (stderr, from C) is set to FATAL: not even warnings


def test_silence_is_no_words(recognizer):
    assert recognizer.transcribe(np.zeros(16_000, np.int16)) == ""
    assert recognizer.transcribe(np.zeros(10, np.int16)) == ""
    with pytest.raises(ValueError):
        recognizer.transcribe(np.zeros(16_000, np.float32))


def test_transcribe_pcm_reads_a_whole_recording(recognizer):
    pcm, said = stream([0.5, "cancel my order", 1.0, "i lost my credit card", 0.7])
    cut = phrases(pcm)
    assert len(cut) == 2
    for (start, end, _), (text, begins, ends) in zip(cut, said):
        assert abs(start - begins) < 0.1 and abs(end - ends) < 0.1, text
    heard = transcribe_pcm(recognizer, pcm)
    print("whole recording ->", heard)
    assert wer("cancel my order i lost my credit card", heard) <= 0.4
    assert transcribe_pcm(recognizer, silence(2.0)) == ""
    slower = at_16k(pcm)
    assert wer("cancel my order i lost my credit card", transcribe_pcm(recognizer, slower, 16_000)) <= 0.4


# --- live -------------------------------------------------------------------------------


def feed_both(live: LiveTranscriber, caller: np.ndarray, agent: np.ndarray, *, paced: bool) -> list[float]:
    """Interleaved 20 ms frames of both sides, in real time when `paced`; the seconds each
    pair of feed calls took."""
    ours, theirs = frames(caller), frames(agent)
    quiet = np.zeros(FRAME_SAMPLES, np.int16)
    started, took = time.monotonic(), []
    for i in range(max(len(ours), len(theirs))):
        if paced:
            time.sleep(max(0.0, started + i * FRAME_S - time.monotonic()))
        t = T0 + i * FRAME_S
        before = time.perf_counter()
        live.feed("caller", ours[i] if i < len(ours) else quiet, t)
        live.feed("agent", theirs[i] if i < len(theirs) else quiet, t)
        took.append(time.perf_counter() - before)
    return took


def test_live_transcriber_hears_both_sides_in_order():
    caller, caller_said = stream([0.3, "book a table for two", 1.0, "cancel my order", 1.0])
    agent, agent_said = stream([1.2, "what time do you open", 1.0, "i lost my credit card", 1.0])
    got = Recording()
    live = LiveTranscriber(make_recognizer(), got)
    took = feed_both(live, caller, agent, paced=True)   # in real time: the lag is a caption's lag
    assert live.close(timeout=30)
    lag = sorted(live.lag)
    print(f"feed (both sides) while recognising: p50 {np.percentile(took, 50) * 1000:.2f} ms, "
          f"p99 {np.percentile(took, 99) * 1000:.2f} ms, max {max(took) * 1000:.2f} ms")
    assert max(took) < 0.100   # seen: up to 32 ms, a decoder call under way (speech/sphinx.py)
    print("live:", *(f"{u.who} {u.start - T0:.2f}-{u.end - T0:.2f} {u.text!r}" for u in got.utterances),
          sep="\n  ")
    print(f"caption lag after the end was noticed: p50 {np.percentile(lag, 50):.2f} s, "
          f"p95 {np.percentile(lag, 95):.2f} s, max {lag[-1]:.2f} s (+0.6 s pause to notice it)")
    assert got.threads == {"polyphone-transcriber"}
    finals = [u for u in got.utterances if u.final]
    assert [u.end for u in finals] == sorted(u.end for u in finals)
    for who, said in (("caller", caller_said), ("agent", agent_said)):
        mine = [u for u in finals if u.who == who]
        assert len(mine) == 2, got.utterances
        for u, (text, start, end) in zip(mine, said):
            assert u.start < u.end
            assert abs(u.start - T0 - start) < 0.1 and abs(u.end - T0 - end) < 0.1, (u, start, end)
            assert wer(text, u.text) <= 0.6, (text, u.text)
            # while it was spoken: the words so far, on the same row (start), before the end
            partials = [p for p in got.utterances if not p.final and p.who == who and p.start == u.start]
            assert partials and all(p.end <= u.end + 0.5 + 0.05 for p in partials), (u, partials)
    assert len(lag) == 4 and live.dropped == 0 and live.errors == 0


def test_silence_and_noise_are_not_sent_to_the_recogniser():
    rng = np.random.default_rng(7)

    def noise(seconds: float, dbfs: float) -> np.ndarray:
        rms = 32768 * 10 ** (dbfs / 20)
        return np.clip(rng.normal(0, rms, round(seconds * SAMPLE_RATE)), -32768, 32767).astype(np.int16)

    caller = np.concatenate([silence(2.0), noise(3.0, -55.0), noise(3.0, -25.0), silence(1.0)])
    agent = np.concatenate([silence(1.0), tone(120.0, 3.0, -15.0), silence(1.0), noise(4.0, -30.0)])
    counting, got = Counting(), Recording()
    live = LiveTranscriber(counting, got)
    feed_both(live, caller, agent, paced=False)
    assert live.close(timeout=5)
    assert counting.calls == [] and got.utterances == []


def test_close_recognises_the_open_phrase():
    got = Recording()
    live = LiveTranscriber(make_recognizer(), got)
    for i, frame in enumerate(frames(np.concatenate([silence(0.4), spoken("cancel my order")]))):
        live.feed("agent", frame, T0 + i * FRAME_S)
    assert not any(u.final for u in got.utterances)      # still speaking as far as it knows
    assert live.close(timeout=30)
    [u] = [u for u in got.utterances if u.final]
    assert u.who == "agent" and u.final and wer("cancel my order", u.text) <= 0.34, u
    live.feed("agent", spoken("cancel my order")[:FRAME_SAMPLES], T0 + 10)   # after close: ignored
    assert live.close(timeout=1)


def ten_seconds_of_talk() -> list[np.ndarray]:
    talk, _ = stream([0.2] + ["book a table for two", 0.8, "what time do you open", 0.8] * 3)
    return frames(np.concatenate([talk, silence(10.0)])[:round(10 * SAMPLE_RATE)])


def timed_feed(live: LiveTranscriber, talk: list[np.ndarray], t: float) -> float:
    """Feed the frames as fast as possible; the seconds spent inside feed."""
    spent = 0.0
    for i, frame in enumerate(talk):
        started = time.perf_counter()
        live.feed("caller", frame, t + i * FRAME_S)
        spent += time.perf_counter() - started
    return spent


def test_feed_never_waits_for_recognition():
    """10 s of a talking caller fed while the worker is stuck in a phrase: feed only buffers."""
    gate = threading.Event()
    counting = Counting("heard", gate)
    live = LiveTranscriber(counting, Recording())
    first, _ = stream([0.2, "cancel my order", 0.8])
    timed_feed(live, frames(first), T0)
    deadline = time.monotonic() + 5
    while not counting.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counting.calls, "the worker is in the first phrase"
    talk = ten_seconds_of_talk()
    spent = timed_feed(live, talk, T0 + 10)
    print(f"feeding 10 s of audio while the recogniser was busy took {spent * 1000:.1f} ms")
    assert spent < 0.050
    assert len(counting.calls) == 1 and live.pending_s > 5.0   # queued, not recognised
    gate.set()
    assert live.close(timeout=10)
    assert len(counting.calls) == 1 + len(phrases(np.concatenate(talk))) == 6


def test_feed_while_pocketsphinx_decodes_in_this_process():
    """The decoder holds the GIL while it works (speech/sphinx.py): fed as fast as possible,
    feed still gets it within a few ms at a time. (Measured: 4-70 ms in all for 10 s of audio,
    depending on the machine's load; decoding a phrase in one piece instead: 0.5-8 s.)"""
    sphinx = make_recognizer()
    busy, done = threading.Event(), threading.Event()

    class Watched:
        name, label, sample_rate = sphinx.name, sphinx.label, sphinx.sample_rate

        def transcribe(self, pcm16k: np.ndarray) -> str:
            busy.set()
            try:
                return sphinx.transcribe(pcm16k)
            finally:
                done.set()

    live = LiveTranscriber(Watched(), Recording())
    first, _ = stream([0.2, "i want to speak to a manager", 0.7])
    timed_feed(live, frames(first), T0)
    assert busy.wait(5)
    spent = timed_feed(live, ten_seconds_of_talk(), T0 + 10)
    print(f"feeding 10 s of audio while pocketsphinx decoded took {spent * 1000:.1f} ms")
    assert not done.is_set(), "the first phrase was being recognised throughout"
    assert spent < 0.250
    assert live.close(timeout=60)


def test_the_queue_drops_the_oldest_phrases_beyond_its_bound():
    gate = threading.Event()
    counting, got = Counting("heard", gate), Recording()
    live = LiveTranscriber(counting, got, max_pending_s=4.0)
    talk, said = stream([0.2] + ["book a table for two", 0.8] * 6)
    first = round((said[0][2] + 0.7) / FRAME_S)   # the first phrase's end is noticed by then
    for i, frame in enumerate(frames(talk)):
        if i == first:
            deadline = time.monotonic() + 5
            while not counting.calls and time.monotonic() < deadline:
                time.sleep(0.01)
            assert counting.calls, "the worker took the first phrase"
        live.feed("caller", frame, T0 + i * FRAME_S)
    assert live.dropped >= 1 and live.pending_s <= 4.0
    gate.set()
    assert live.close(timeout=10)
    assert len(got.utterances) + live.dropped == len(said) == 6
    ends = [u.end - T0 for u in got.utterances]
    assert ends[0] == pytest.approx(said[0][2], abs=0.1)    # under way when the queue overflowed
    assert ends[-1] == pytest.approx(said[-1][2], abs=0.1)  # the newest survive, the oldest went
    assert ends[1] > said[1][2] + 0.1


def test_a_failing_recogniser_or_handler_does_not_stop_the_transcript():
    class Flaky(Counting):
        def transcribe(self, pcm16k: np.ndarray) -> str:
            super().transcribe(pcm16k)
            if len(self.calls) == 1:
                raise RuntimeError("decoder broke")
            return "second"

    def handler(u: Utterance) -> None:
        got(u)
        raise RuntimeError("handler broke")

    got, flaky = Recording(), Flaky()
    live = LiveTranscriber(flaky, handler)
    talk, _ = stream([0.2, "cancel my order", 0.8, "cancel my order", 0.8])
    feed_both(live, talk, silence(0.0), paced=False)
    assert live.close(timeout=5)
    assert live.errors == 1 and [u.text for u in got.utterances] == ["second"]
    with pytest.raises(ValueError):
        live.feed("operator", talk[:FRAME_SAMPLES], T0)
