"""In-band DTMF: the tones we make, and the detector that must hear them (through Opus too)
and nothing else: not silence, noise, a plain tone, a voice, or a pair off its frequencies."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from polyphone.audio.analysis import level_dbfs
from polyphone.audio.dtmf import DIGITS, HIGH_HZ, LOW_HZ, DtmfDetector, frequencies, tones
from polyphone.audio.files import FRAME_SAMPLES, SAMPLE_RATE, frame_to_mono
from polyphone.audio.opus import MonoOpusEncoder
from polyphone.localgw import keypad as keypad_module
from polyphone.localgw.agents import load_greeting
from polyphone.localgw.keypad import Keypad, KeypadTurns, spoken

ALL = "1234567890*#ABCD"


def hear(pcm: np.ndarray, chunk: int = FRAME_SAMPLES) -> str:
    detector = DtmfDetector()
    found = []
    for i in range(0, len(pcm), chunk):
        found += detector.feed(pcm[i:i + chunk])
    assert detector.heard == "".join(found)
    return "".join(found)


def pad(pcm: np.ndarray, lead: int = 1000, tail: int = SAMPLE_RATE // 5) -> np.ndarray:
    return np.concatenate([np.zeros(lead, np.int16), pcm, np.zeros(tail, np.int16)])


def pair(low: float, high: float, ms: float = 100.0, amps: tuple[float, float] = (4000, 5000)
         ) -> np.ndarray:
    t = np.arange(round(ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    return (amps[0] * np.sin(2 * np.pi * low * t) + amps[1] * np.sin(2 * np.pi * high * t)).astype(np.int16)


def keypad_with(scale_low: float, scale_high: float) -> np.ndarray:
    """Every digit, its frequencies scaled, 100 ms tones with 100 ms gaps."""
    gap = np.zeros(SAMPLE_RATE // 10, np.int16)
    parts = []
    for digit in DIGITS:
        low, high = frequencies(digit)
        parts += [pair(low * scale_low, high * scale_high), gap]
    return np.concatenate(parts)


def with_noise(pcm: np.ndarray, snr_db: float, seed: int = 7) -> np.ndarray:
    x = pcm.astype(np.float64)
    power = np.mean(x[x != 0] ** 2)  # the tones' power, not diluted by the gaps
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))
    return np.clip(x + noise, -32768, 32767).astype(np.int16)


# --- the tones ----------------------------------------------------------------------


def test_keypad_table():
    assert frequencies("1") == (697.0, 1209.0)
    assert frequencies("#") == (941.0, 1477.0)
    assert frequencies("D") == frequencies("d") == (941.0, 1633.0)
    assert {frequencies(d) for d in DIGITS} == {(lo, hi) for lo in LOW_HZ for hi in HIGH_HZ}


def test_tones_shape_level_ramps_and_gaps():
    pcm = tones("1#", tone_ms=100, gap_ms=60)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert len(pcm) == SAMPLE_RATE * 260 // 1000
    tone_len = SAMPLE_RATE // 10
    assert not pcm[tone_len:tone_len + SAMPLE_RATE * 60 // 1000].any(), "silence between digits"
    assert np.abs(pcm).max() <= 32767 * 10 ** (-10 / 20) + 1   # -10 dBFS peak by default
    assert abs(int(pcm[0])) < 100 and abs(int(pcm[tone_len - 1])) < 100, "faded in and out"
    loud = tones("5", level_dbfs=0.0)
    assert np.abs(loud.astype(np.int32)).max() <= 32767
    spectrum = np.abs(np.fft.rfft(tones("5", tone_ms=1000).astype(np.float64)))
    low, high = spectrum[770], spectrum[1336]   # 1 Hz bins
    assert 20 * np.log10(high / low) == pytest.approx(2.0, abs=0.2)   # the default twist
    assert np.array_equal(tones("abcd"), tones("ABCD"))
    assert len(tones("")) == 0


@pytest.mark.parametrize("kwargs, words", [
    ({"tone_ms": 39}, "tone_ms=39"), ({"gap_ms": 20}, "gap_ms=20"),
    ({"level_dbfs": 3.0}, "0 dBFS"), ({"sample_rate": 4000}, "8000"),
])
def test_tones_refuses_what_q24_or_the_format_forbids(kwargs, words):
    with pytest.raises(ValueError, match=words) as info:
        tones("1", **kwargs)
    if "ms" in words:
        assert "40 ms" in str(info.value) and "Q.24" in str(info.value)


@pytest.mark.parametrize("bad", ["x", "12e", "1 2", "+"])
def test_tones_names_a_bad_character(bad):
    culprit = next(c for c in bad if c.upper() not in DIGITS)
    with pytest.raises(ValueError, match="not a DTMF digit") as info:
        tones(bad)
    assert repr(culprit) in str(info.value)


# --- hearing them --------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [960, 441])
def test_every_digit_round_trips_in_any_chunk_size(chunk):
    assert hear(pad(tones(ALL)), chunk) == ALL


def test_q24_minimum_tones_and_gaps_are_heard():
    assert hear(pad(tones(ALL, tone_ms=40, gap_ms=40))) == ALL
    assert hear(pad(tones("5555", tone_ms=40, gap_ms=40))) == "5555", "a repeated digit, each time"


def test_digits_survive_white_noise_at_15_db_snr():
    assert hear(with_noise(pad(tones(ALL)), 15.0)) == ALL
    assert hear(with_noise(pad(tones(ALL, tone_ms=40, gap_ms=40)), 15.0, seed=3)) == ALL


def test_quiet_digits_at_minus_30_dbfs_are_heard():
    pcm = tones(ALL, level_dbfs=-30.0)
    assert level_dbfs(pcm[:SAMPLE_RATE // 10]) < -35
    assert hear(pad(pcm)) == ALL


def test_a_long_press_is_one_digit_and_a_short_break_is_bridged():
    assert hear(pad(tones("7", tone_ms=1500))) == "7"
    broken = np.concatenate([tones("7", tone_ms=100), np.zeros(SAMPLE_RATE // 100, np.int16),
                             tones("7", tone_ms=100)])   # a 10 ms drop-out inside one press
    assert hear(pad(broken)) == "7"


def test_a_20_ms_burst_is_not_a_digit():
    assert hear(pad(pair(770.0, 1336.0, ms=20.0))) == ""


def test_frequencies_off_by_1_5_percent_are_heard():
    for scale in (0.985, 1.015):
        assert hear(keypad_with(scale, scale)) == DIGITS
        assert hear(keypad_with(scale, 1.0)) == DIGITS
        assert hear(keypad_with(1.0, scale)) == DIGITS


@pytest.mark.parametrize("scale", [0.95, 0.964, 1.036, 1.05])
def test_frequencies_off_by_more_than_3_5_percent_are_refused(scale):
    assert hear(keypad_with(scale, scale)) == ""
    assert hear(keypad_with(scale, 1.0)) == ""
    assert hear(keypad_with(1.0, scale)) == ""


def test_twist_limits():
    low, high = frequencies("5")
    for amps, heard in [((4000, 4000), "5"), ((2000, 4800), "5"), ((5000, 3500), "5"),
                        ((1000, 4000), ""), ((4000, 2000), "")]:   # +12 dB, -6 dB: refused
        assert hear(pad(pair(low, high, amps=amps))) == heard, amps


def test_silence_noise_a_plain_tone_and_a_voice_are_not_digits():
    rng = np.random.default_rng(1)
    seconds = 3 * SAMPLE_RATE
    t = np.arange(seconds) / SAMPLE_RATE
    assert hear(np.zeros(seconds, np.int16)) == ""
    assert hear(rng.normal(0, 6000, seconds).astype(np.int16)) == ""
    assert hear((12000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)) == ""
    for f0 in (100.0, 120.0, 150.0, 200.0):   # a glottal pulse train: rich in harmonics
        pulses = np.zeros(seconds)
        pulses[::round(SAMPLE_RATE / f0)] = 1.0
        n = np.arange(480)
        formant = np.exp(-n / 60) * np.sin(2 * np.pi * 800 * n / SAMPLE_RATE)
        voice = np.convolve(pulses, formant)[:seconds]
        assert hear((voice / np.abs(voice).max() * 16000).astype(np.int16)) == "", f0
        assert hear((pulses * 16000).astype(np.int16)) == "", f0


def test_the_bundled_speech_is_not_digits():
    assert hear(load_greeting()) == ""


def test_a_detector_refuses_a_rate_it_cannot_decimate():
    with pytest.raises(ValueError, match="8000"):
        DtmfDetector(44_100)
    assert DtmfDetector(8000).feed(tones(ALL, sample_rate=8000)) == list(ALL)


def test_digits_survive_opus():
    """Through the encoder the microphone uses and aiortc's decoder (what the gateway hears)."""
    pcm = pad(tones(ALL, tone_ms=60, gap_ms=60), tail=SAMPLE_RATE // 2)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME_SAMPLES, np.int16)])
    encoder, decoder, detector = MonoOpusEncoder(), OpusDecoder(), DtmfDetector()
    heard, decoded = [], 0
    for i in range(0, len(pcm), FRAME_SAMPLES):
        packet = encoder.encode(pcm[i:i + FRAME_SAMPLES])
        if packet is None:
            continue
        for frame in decoder.decode(JitterFrame(bytes(packet), packet.pts)):
            decoded += frame.samples
            heard += detector.feed(frame_to_mono(frame))
    assert decoded >= len(pcm) - 2 * FRAME_SAMPLES
    assert "".join(heard) == ALL


# --- the demo agent's keypad (localgw.keypad), frame by frame -------------------------


def frames_of(pcm: np.ndarray) -> list[np.ndarray]:
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME_SAMPLES, np.int16)])
    return [pcm[i:i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]


def drive(turns, keypad, frames: list[np.ndarray], clock: list[float]) -> list[np.ndarray]:
    """One caller frame in (turns, then keypad, as DemoAgent does) and one agent frame out per tick."""
    out = []
    for frame in frames:
        clock[0] += FRAME_SAMPLES / SAMPLE_RATE
        turns.hear(frame, clock[0])
        if keypad is not None:
            keypad.hear(frame, clock[0])
        out.append(turns.speak(FRAME_SAMPLES, clock[0]))
    return out


def test_spoken_reply_text():
    assert spoken("1234#") == "You pressed 1 2 3 4 hash"
    assert spoken("*0A") == "You pressed star 0 A"


def test_reply_audio_falls_back_to_the_tones(monkeypatch):
    from polyphone.speech import voice  # imported here, as the keypad does: optional

    def broken(*args, **kwargs):
        raise OSError("no libespeak-ng")

    monkeypatch.setattr(voice, "render", broken)
    pcm, kind = keypad_module.reply_audio("12#")
    assert kind == "tones" and np.array_equal(pcm, tones("12#"))
    monkeypatch.setattr(voice, "render", lambda text, **kw: np.full(4800, 100, np.int16))
    pcm, kind = keypad_module.reply_audio("12#")
    assert kind == "voice" and len(pcm) == 4800


async def test_a_keypad_turn_is_not_said_back_but_speech_still_is():
    silence = [np.zeros(FRAME_SAMPLES, np.int16)] * 60
    turns = KeypadTurns(None, think_ms=100)
    keypad = Keypad(turns)   # its sequence is not over (REPLY_AFTER_S) before the test is
    clock = [100.0]
    out = drive(turns, keypad, frames_of(tones("159#")) + silence, clock)
    assert keypad.digits == "159#" and turns.keypad_turns == 1
    assert turns.utterances == 1 and turns.turns == 0 and not any(f.any() for f in out)
    speech = frames_of((8000 * np.sin(2 * np.pi * 300 * np.arange(9600) / SAMPLE_RATE)).astype(np.int16))
    out = drive(turns, keypad, speech + silence, clock)
    assert turns.turns == 1 and any(f.any() for f in out), "words are still said back"
    assert turns.keypad_turns == 1 and keypad.sequences == []
    await keypad.stop()


def test_a_keypad_reply_waits_for_a_free_line_and_counts_as_a_turn():
    turns = KeypadTurns(tones("1"), think_ms=100)   # speaking its (short) greeting
    reply = tones("2")
    assert not turns.queue_reply(reply, 0.0)
    drive(turns, None, [np.zeros(FRAME_SAMPLES, np.int16)] * 15, [0.0])
    assert turns.queue_reply(reply, 1.0)
    out = drive(turns, None, [np.zeros(FRAME_SAMPLES, np.int16)] * 12, [1.0])
    assert turns.turns == 1
    assert np.array_equal(np.concatenate(out)[:len(reply)], reply)


async def test_the_keypad_logs_a_sequence_once_and_queues_the_reply(monkeypatch, caplog):
    monkeypatch.setattr(keypad_module, "REPLY_AFTER_S", 0.2)
    monkeypatch.setattr(keypad_module, "reply_audio", lambda digits: (tones(digits), "tones"))
    caplog.set_level(logging.INFO, logger="polyphone.localgw")
    turns = KeypadTurns(None, think_ms=100)
    keypad = Keypad(turns, "s-1")
    clock = [time.monotonic()]   # the clock the keypad times its replies by
    drive(turns, keypad, frames_of(tones("12")), clock)
    await asyncio.sleep(0.1)
    drive(turns, keypad, frames_of(tones("3*")), clock)   # within REPLY_AFTER_S: one sequence
    drive(turns, keypad, [np.zeros(FRAME_SAMPLES, np.int16)] * 20, clock)   # the caller's turn ends
    assert turns.keypad_turns == 1 and not turns.caller_speaking
    for _ in range(100):
        if keypad.replies:
            break
        await asyncio.sleep(0.02)
    assert keypad.sequences == ["123*"] and keypad.reply_kinds == ["tones"]
    assert [r.getMessage() for r in caplog.records if "pressed" in r.getMessage()] == [
        "session s-1: caller pressed 123*"]
    silence = [np.zeros(FRAME_SAMPLES, np.int16)] * 40
    out = drive(turns, keypad, silence, clock)
    assert turns.turns == 1 and hear(np.concatenate(out)) == "123*"
    await keypad.stop()
