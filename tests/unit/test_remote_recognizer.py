"""The recogniser in its own process (speech/remote.py): real `polyphone --asr-worker` children."""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest

from polyphone.speech import voice
from polyphone.speech.remote import MAX_MESSAGE, RemoteRecognizer, read_message, write_message
from polyphone.speech.transcribe import TranscriptionError, _resample


def test_messages_round_trip_and_a_short_stream_ends_cleanly() -> None:
    buf = io.BytesIO()
    write_message(buf, b"hello")
    write_message(buf, b"")
    buf.seek(0)
    assert read_message(buf) == b"hello" and read_message(buf) == b"" and read_message(buf) is None
    assert read_message(io.BytesIO(b"\x00\x00\x00\x09abc")) is None          # cut short
    with pytest.raises(ValueError):
        read_message(io.BytesIO((MAX_MESSAGE + 1).to_bytes(4, "big")))


def test_a_phrase_is_recognised_in_the_child_and_loading_it_does_not_stall_us() -> None:
    lags, done, box = [], threading.Event(), {}

    def start() -> None:
        box["r"] = RemoteRecognizer("pocketsphinx")
        done.set()

    threading.Thread(target=start, daemon=True).start()
    last = time.monotonic()
    while not done.wait(0.005):          # this thread keeps ticking while the model loads
        now = time.monotonic()
        lags.append(now - last - 0.005)
        last = now
    r = box["r"]
    try:
        assert r.label.startswith("pocketsphinx") and r.sample_rate == 16_000
        # It works on spare CPU only: the call's audio threads never wait for it.
        assert os.sched_getscheduler(r._proc.pid) == os.SCHED_IDLE
        # In-process, pocketsphinx holds the GIL ~450 ms while loading its model.
        assert max(lags) < 0.1, f"this process stalled {1000 * max(lags):.0f} ms while the child loaded"
        pcm = _resample(voice.render("I would like to book a table for two"), 48_000, 16_000)
        assert r.transcribe(pcm) == "i would like to book a table for two"
        assert r.transcribe(np.zeros(1600, np.int16)) == ""                  # silence: no words
    finally:
        r.close()
    assert r._proc.returncode == 0                                          # stdin closed: it exits


def test_an_unknown_engine_is_explained() -> None:
    with pytest.raises(TranscriptionError) as err:
        RemoteRecognizer("wav2letter")
    assert "wav2letter" in err.value.message and "pocketsphinx" in str(err.value)


def test_a_worker_that_died_is_an_error_not_a_hang() -> None:
    r = RemoteRecognizer("pocketsphinx")
    r._proc.kill()
    r._proc.wait()
    with pytest.raises(TranscriptionError, match="stopped"):
        r.transcribe(np.zeros(1600, np.int16))
    r.close()


def test_a_phrase_streamed_as_it_is_spoken_has_words_before_its_end() -> None:
    """The live path: 20 ms pieces as they come, the words so far on the way, the last step at
    the end; a phrase abandoned half-way leaves the worker ready for the next."""
    from polyphone.speech.remote import AUDIO, END

    r = RemoteRecognizer("pocketsphinx")
    try:
        pcm = _resample(voice.render("I would like to book a table for two"), 48_000, 16_000)
        stream, partials = r.stream(), []
        for i in range(0, pcm.size, 320):
            stream.feed(pcm[i:i + 320])
            if i and i % 8000 == 0:
                partials.append(stream.partial())
        started = time.perf_counter()
        text = stream.finish()
        took = time.perf_counter() - started
        print(f"partials {partials}; the end took {1000 * took:.0f} ms")
        assert text == "i would like to book a table for two"
        assert partials[-1].split()[:3] == text.split()[:3]      # the words so far, as they came
        half = r.stream()
        half.feed(pcm[: pcm.size // 2])
        half.abandon()
        assert r.transcribe(pcm) == text                 # the next phrase starts afresh
        r._send(AUDIO, pcm[:320].tobytes())              # audio with no phrase begun...
        r._send(END)
        with pytest.raises(TranscriptionError, match="no phrase begun"):
            r._answer()                                  # ...is an error on that phrase's answer
        assert r.transcribe(pcm) == text                 # and the worker goes on
    finally:
        r.close()
    assert r._proc.returncode == 0
