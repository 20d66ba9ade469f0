"""The recogniser in its own process (speech/remote.py): real `polyphone --asr-worker` children."""

from __future__ import annotations

import io
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
