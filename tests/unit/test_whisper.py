"""The Whisper engine (speech/whisper.py) on a real faster-whisper model, tiny and random
(helpers/tiny_whisper.py), and `polyphone models` as a person runs it. No internet: the hub is
helpers.tiny_whisper.Hub on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import helpers.tiny_whisper as tw
from helpers.cli import run_polyphone
from helpers.waits import wait_until
from polyphone.speech import models
from polyphone.speech.remote import RemoteRecognizer
from polyphone.speech.transcribe import TranscriptionError, make_recognizer
from polyphone.speech.whisper import WhisperRecognizer

tiny_whisper = tw.tiny_whisper   # the fixtures (see helpers/tiny_whisper.py)
model_hub = tw.model_hub
model_cache = tw.model_cache

cache = pytest.fixture(autouse=True, name="cache")(lambda model_cache: model_cache)   # each test: its own


def noise(seconds: float = 1.0, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3000, round(16_000 * seconds)).astype(np.int16)


def test_the_tiny_model_loads_from_its_folder_and_transcribes_noise(tiny_whisper: Path) -> None:
    recognizer = WhisperRecognizer(str(tiny_whisper))
    assert recognizer.name == "whisper" and recognizer.sample_rate == 16_000
    assert recognizer.label == f"Whisper {tiny_whisper.name} (offline)"
    text = recognizer.transcribe(noise())
    assert isinstance(text, str) and text == " ".join(text.split())   # random weights: any words
    assert recognizer.transcribe(np.zeros(16_000, dtype=np.int16)) == ""
    with pytest.raises(ValueError):
        recognizer.transcribe(noise().astype(np.float32))


def test_by_name_after_a_pull_and_through_make_recognizer(model_hub: tw.Hub,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.HUB_ENV, model_hub.url)
    models.pull("tiny")
    recognizer = make_recognizer("whisper", model="tiny")
    assert isinstance(recognizer, WhisperRecognizer)
    assert recognizer.label == "Whisper tiny (offline)"
    assert isinstance(recognizer.transcribe(noise(0.5)), str)


def test_a_model_that_is_not_here_says_how_to_get_it() -> None:
    with pytest.raises(TranscriptionError, match="not on this computer") as caught:
        make_recognizer("whisper")                        # the default, base.en, never pulled
    assert "polyphone models pull base.en" in caught.value.action
    with pytest.raises(TranscriptionError, match="has no choice of model"):
        make_recognizer("pocketsphinx", model="tiny")


def test_a_damaged_model_is_a_transcription_error(tiny_whisper: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in tw.FILES:
        (broken / name).write_bytes((tiny_whisper / name).read_bytes())
    (broken / "model.bin").write_bytes((tiny_whisper / "model.bin").read_bytes()[:5000])
    with pytest.raises(TranscriptionError, match="could not be loaded"):
        WhisperRecognizer(str(broken))


def test_the_worker_process_runs_whisper_with_a_model(tiny_whisper: Path) -> None:
    recognizer = RemoteRecognizer("whisper", model=str(tiny_whisper))
    try:
        assert recognizer.label == f"Whisper {tiny_whisper.name} (offline)"
        assert recognizer.sample_rate == 16_000
        assert isinstance(recognizer.transcribe(noise()), str)
    finally:
        recognizer.close()
    with pytest.raises(TranscriptionError, match="not on this computer"):
        RemoteRecognizer("whisper", model="small.en")


# --- polyphone models -------------------------------------------------------------------


async def test_the_models_command_lists_pulls_verifies_and_removes(model_hub: tw.Hub, tmp_path: Path,
                                                                    cache: Path) -> None:
    env = {models.HUB_ENV: model_hub.url, "POLYPHONE_CACHE_DIR": str(cache)}

    async def polyphone(*args: str) -> tuple[int, str, str]:
        return await run_polyphone("models", *args, tmp=tmp_path, token=None, env=env)

    code, out, _ = await polyphone("list")
    assert code == 0 and "base.en *" in out and "small.en" in out and str(cache / "models") in out
    code, out, err = await polyphone("pull", "tiny")
    assert code == 0, err
    assert "tiny is ready" in out and "100.0%" in err and "MB/s" in err
    code, out, _ = await polyphone("list")
    assert code == 0 and any(line.startswith("tiny ") and "installed" in line for line in out.splitlines())
    code, out, _ = await polyphone("verify", "tiny")
    assert code == 0 and "every file matches" in out
    blob = cache / "models" / "tiny" / "tokenizer.json"
    blob.write_bytes(blob.read_bytes().replace(b"endoftext", b"ENDOFTEXT"))
    code, _, err = await polyphone("verify", "tiny")
    assert code == 1 and "tokenizer.json is damaged" in err and "polyphone models pull tiny" in err
    code, out, _ = await polyphone("remove", "tiny")
    assert code == 0 and "Removed tiny" in out
    code, _, err = await polyphone("remove", "tiny")
    assert code == 1 and "no model called 'tiny'" in err
    code, _, err = await polyphone("pull", "huge")
    assert code == 2 and "tiny.en" in err
    code, _, _ = await polyphone()
    assert code == 2


async def test_pulling_with_no_hub_explains_and_fails(tmp_path: Path, cache: Path) -> None:
    env = {models.HUB_ENV: "http://127.0.0.1:9", "POLYPHONE_CACHE_DIR": str(cache)}
    code, _, err = await run_polyphone("models", "pull", "tiny", tmp=tmp_path, token=None, env=env)
    assert code == 1 and "could not reach the model hub" in err and "into a folder" in err


def test_ctrl_c_keeps_the_part_and_the_next_pull_resumes(model_hub: tw.Hub, cache: Path) -> None:
    model_hub.delay = 0.1                # 29 chunks of model.bin: ~3 s to come
    env = dict(os.environ, POLYPHONE_MODEL_HUB=model_hub.url, POLYPHONE_CACHE_DIR=str(cache))
    part = cache / "models" / "tiny" / "model.bin.part"
    proc = subprocess.Popen([sys.executable, "-m", "polyphone", "models", "pull", "tiny"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: part.exists() and part.stat().st_size > 0, timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "again to resume" in err
    kept = part.stat().st_size
    assert kept > 0
    model_hub.delay = 0.0
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "polyphone", "models", "pull", "tiny"], env=env, check=True,
                   capture_output=True, timeout=60)
    assert time.monotonic() - started < 60
    assert model_hub.gets("model.bin")[-1].range == f"bytes={kept}-"
    assert models.verify("tiny") == []


def test_polyphone_run_takes_a_whisper_recogniser_only_when_its_model_is_here(tiny_whisper: Path) -> None:
    """`polyphone run --recognizer ENGINE[:MODEL]` is checked before any call is placed."""
    import argparse

    from polyphone.cli.call import UsageError
    from polyphone.cli.run import recognizer

    def choose(text: str, no_transcript: bool = False) -> tuple[str, str | None]:
        return recognizer(argparse.Namespace(recognizer=text, no_transcript=no_transcript))

    assert choose("pocketsphinx") == ("pocketsphinx", None)
    assert choose(f"whisper:{tiny_whisper}") == ("whisper", str(tiny_whisper))
    with pytest.raises(UsageError, match="models pull small.en"):
        choose("whisper:small.en")                       # never pulled: says how to get it
    with pytest.raises(UsageError, match="wav2letter"):
        choose("wav2letter")
    assert choose("whisper:small.en", no_transcript=True) == ("whisper", "small.en")  # not used
