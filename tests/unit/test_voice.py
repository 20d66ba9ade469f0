"""Spoken caller lines through espeak-ng (polyphone.speech.voice): real synthesis, no network."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from polyphone.audio.files import SAMPLE_RATE
from polyphone.errors import UserFacingError
from polyphone.speech import voice

LINE = "I'd like to book a table for two"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POLYPHONE_CACHE_DIR", str(tmp_path))
    return tmp_path / "voice"


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def edge_silence(pcm: np.ndarray) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= voice.SILENCE_LEVEL)
    return int(loud[0]), int(len(pcm) - 1 - loud[-1])


def test_renders_a_phrase_as_48k_int16_speech():
    pcm = voice.render(LINE)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert 1.0 <= len(pcm) / SAMPLE_RATE <= 4.0
    assert rms(pcm) > 1000  # about -30 dBFS: clearly not silence
    head, tail = edge_silence(pcm)
    limit = int(SAMPLE_RATE * 0.025)  # at most ~20 ms of silence left at either end
    assert head <= limit and tail <= limit
    assert voice.ENGINE_LABEL == "espeak-ng"


def test_spectrum_looks_like_speech():
    pcm = voice.render(LINE).astype(np.float64)
    power = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)
    band = power[(freqs >= 100) & (freqs <= 4000)].sum() / power.sum()
    assert band > 0.8
    assert power[freqs > 12000].sum() / power.sum() < 0.01  # espeak's 22 kHz, resampled: no images


def test_a_faster_rate_gives_shorter_audio():
    slow = voice.render(LINE, rate=120)
    normal = voice.render(LINE)
    fast = voice.render(LINE, rate=300)
    assert len(fast) < 0.8 * len(normal) < 0.8 * 0.8 * len(slow)


def test_the_second_render_reads_the_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    first = voice.render(LINE)
    files = list(cache_dir.glob("*.npy"))
    assert len(files) == 1 and len(files[0].stem) == 64  # a sha256

    def no_synthesis(*args: object) -> None:
        raise AssertionError("synthesised again instead of reading the cache")

    monkeypatch.setattr(voice, "_synthesize", no_synthesis)
    assert np.array_equal(voice.render(LINE), first)
    assert np.array_equal(voice.render("  I'd like to book\na table for two "), first)  # same words
    with pytest.raises(AssertionError):
        voice.render(LINE, rate=176)  # another rate is another key
    with pytest.raises(AssertionError):
        voice.render(LINE, cache=False)
    assert not list(cache_dir.glob(".tmp-*"))


@pytest.mark.parametrize("damage", [b"", b"not numpy at all", "truncate", "wrong dtype"])
def test_a_damaged_cache_file_is_rewritten(cache_dir: Path, damage: object):
    good = voice.render(LINE)
    (path,) = cache_dir.glob("*.npy")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "wrong dtype":
        np.save(path, good.astype(np.float32))
    else:
        path.write_bytes(damage)
    again = voice.render(LINE)
    assert again.dtype == np.int16 and abs(len(again) - len(good)) < SAMPLE_RATE * 0.05
    reread = np.load(path, allow_pickle=False)
    assert reread.dtype == np.int16 and np.array_equal(reread, again)


def test_an_unwritable_cache_still_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("POLYPHONE_CACHE_DIR", str(blocker))  # "voice" cannot be made under a file
    assert len(voice.render(LINE)) > SAMPLE_RATE


def test_an_unknown_voice_names_it_and_offers_others():
    with pytest.raises(voice.VoiceError) as caught:
        voice.render(LINE, voice="xx-nosuch")
    error = caught.value
    assert isinstance(error, UserFacingError)
    assert "xx-nosuch" in error.message
    assert "en-us" in error.action
    with pytest.raises(voice.VoiceError, match="en-zz") as caught:
        voice.render(LINE, voice="en-zz")
    assert "en-gb" in caught.value.action  # the neighbours of the language asked for


@pytest.mark.parametrize(
    ("text", "kwargs", "words"),
    [
        ("", {}, "no text"),
        ("   \n\t", {}, "no text"),
        ("x" * 1001, {}, "1001 characters"),
        ("hello\x00there", {}, "control"),
        (LINE, {"voice": "en us"}, "not a voice"),
        (LINE, {"voice": "../../etc/passwd"}, "not a voice"),
        (LINE, {"voice": ""}, "not a voice"),
        (LINE, {"rate": 79}, "out of range"),
        (LINE, {"rate": 451}, "out of range"),
        (LINE, {"rate": 175.0}, "out of range"),
    ],
)
def test_bad_input_is_refused_with_what_to_do(text: str, kwargs: dict, words: str):
    with pytest.raises(voice.VoiceError, match=words) as caught:
        voice.render(text, **kwargs)
    assert caught.value.action


def test_edge_lengths_and_variants_are_accepted():
    assert len(voice.render("x" * 1000, rate=450)) > 0
    assert len(voice.render("Hello there.", voice="en-us+f3", rate=80)) > 0
    assert len(voice.render("Guten Tag.", voice="DE")) > 0  # names are not case-sensitive


def test_voices_lists_usable_names():
    names = voice.voices()
    assert len(names) > 50
    assert {"en-us", "en-gb", "de"} <= set(names)
    assert names == sorted(set(names))
    assert all(voice._VOICE_NAME.fullmatch(name) for name in names)


def test_two_threads_rendering_at_once_both_get_their_own_audio():
    lines = {"a": LINE, "b": "Could you confirm the reservation for eight o'clock, please?"}
    alone = {key: voice.render(text, cache=False) for key, text in lines.items()}
    results: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(key: str) -> None:
        try:
            start.wait()
            for _ in range(4):
                results[key].append(voice.render(lines[key], cache=False))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(key,)) for key in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    for key, pcms in results.items():
        assert len(pcms) == 4
        for pcm in pcms:
            # espeak-ng adds a little randomness, so compare length and level, not samples
            assert abs(len(pcm) - len(alone[key])) < SAMPLE_RATE * 0.05
            assert abs(rms(pcm) - rms(alone[key])) < 0.1 * rms(alone[key])
    assert abs(len(alone["a"]) - len(alone["b"])) > SAMPLE_RATE * 0.5  # so a mix-up would show


def test_a_library_that_cannot_load_says_to_reinstall(monkeypatch: pytest.MonkeyPatch):
    import espeakng_loader

    monkeypatch.setattr(voice, "_engine_state", None)
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    with pytest.raises(voice.VoiceError, match="could not be loaded") as caught:
        voice.render(LINE)
    assert "einstall" in caught.value.action
