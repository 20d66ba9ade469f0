"""Spoken caller lines, offline: text to 48 kHz mono int16 PCM through espeak-ng (via ctypes).

The `espeakng-loader` wheel carries libespeak-ng and its data. espeak-ng has one global state and
is not thread-safe: every call into it holds `_LOCK`; it is initialised once, on first use. Audio
is cached in `config.cache_dir() / "voice"`, a `.npy` per sha256 of (text, voice, rate, version).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from .. import config
from ..audio.files import SAMPLE_RATE
from ..errors import UserFacingError

ENGINE_LABEL = "espeak-ng"

MAX_TEXT_CHARS = 1000
MIN_RATE, MAX_RATE = 80, 450
EDGE_SILENCE_S = 0.020  # at most this much digital silence is kept at either end
SILENCE_LEVEL = 32  # |sample| below this (about -60 dBFS) counts as digital silence
_VOICE_NAME = re.compile(r"[a-z0-9][a-z0-9+-]{0,39}")
_CACHE_FORMAT = 1

# From espeak-ng's speak_lib.h. Without DONT_EXIT, missing data makes espeak_Initialize call exit().
_AUDIO_OUTPUT_SYNCHRONOUS, _INITIALIZE_DONT_EXIT = 2, 0x8000
_POS_CHARACTER, _CHARS_UTF8, _PARAM_RATE, _EE_OK, _EE_NOT_FOUND = 1, 1, 1, 0, 2

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


class VoiceError(UserFacingError):
    """A caller line could not be spoken: bad input, unknown voice, or no working espeak-ng."""


class _Voice(ctypes.Structure):  # `languages`: (priority byte, name, NUL) repeated, then a NUL
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


@dataclass
class _Engine:
    lib: ctypes.CDLL
    sample_rate: int
    version: str
    callback: object  # the ctypes callback: referenced here so it outlives every synthesis
    chunks: list[bytes]


_REINSTALL = "Reinstall Polyphone (or run `pip install --force-reinstall espeakng-loader`)."
_LOCK = threading.Lock()
_engine_state: _Engine | None = None


def _declare(lib: ctypes.CDLL) -> None:
    c = ctypes
    signatures = {  # name: (argument types, result type), as in speak_lib.h
        "espeak_Initialize": ([c.c_int, c.c_int, c.c_char_p, c.c_int], c.c_int),
        "espeak_Info": ([c.c_void_p], c.c_char_p),
        "espeak_SetSynthCallback": ([_SynthCallback], None),
        "espeak_SetVoiceByName": ([c.c_char_p], c.c_int),
        "espeak_SetParameter": ([c.c_int, c.c_int, c.c_int], c.c_int),
        "espeak_Synth": ([c.c_void_p, c.c_size_t, c.c_uint, c.c_int, c.c_uint, c.c_uint, c.c_void_p,
                          c.c_void_p], c.c_int),
        "espeak_ListVoices": ([c.c_void_p], c.POINTER(c.POINTER(_Voice))),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype


def _load() -> _Engine:
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
        _declare(lib)
    except (ImportError, OSError, AttributeError) as exc:
        raise VoiceError(f"The speech engine {ENGINE_LABEL} could not be loaded: {exc}.", _REINSTALL) from exc
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data), _INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise VoiceError(f"The speech engine {ENGINE_LABEL} found no voice data in {data}.", _REINSTALL)
    chunks: list[bytes] = []

    def collect(wav: int | None, count: int, _events: int | None) -> int:
        if wav and count > 0:
            chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0: go on synthesising

    callback = _SynthCallback(collect)
    lib.espeak_SetSynthCallback(callback)
    version = (lib.espeak_Info(None) or b"unknown").decode("ascii", "replace")
    return _Engine(lib, rate, version, callback, chunks)


def _engine() -> _Engine:
    """The initialised library; call with `_LOCK` held."""
    global _engine_state
    if _engine_state is None:
        _engine_state = _load()
    return _engine_state


def _list_voices(engine: _Engine) -> list[str]:
    table, found, i = engine.lib.espeak_ListVoices(None), set(), 0
    while table and table[i]:
        languages = table[i].contents.languages
        if languages:  # the first entry, after its priority byte, is the voice's own language
            found.add(ctypes.string_at(languages + 1).decode("ascii", "replace").lower())
        i += 1
    return sorted(found)


def voices() -> list[str]:
    """The voice names `render` accepts (language codes such as "en-us", "de", "fr-fr")."""
    with _LOCK:
        return _list_voices(_engine())


def engine_version() -> str:
    """espeak-ng's version string, e.g. "1.52.0"."""
    with _LOCK:
        return _engine().version


def _unknown_voice(engine: _Engine, voice: str) -> VoiceError:
    names = _list_voices(engine)
    base = voice.split("+", 1)[0].split("-", 1)[0]
    near = sorted((n for n in names if n.split("-", 1)[0] == base), key=lambda n: (len(n), n))
    near = near or ["en-us", "en-gb", "de", "fr-fr", "es"]
    return VoiceError(f'There is no {ENGINE_LABEL} voice called "{voice}".',
                      f"Pick one such as {', '.join(near[:6])} ({len(names)} voices in all).")


def _synthesize(text: str, voice: str, rate: int) -> tuple[np.ndarray, int]:
    """Raw speech from espeak-ng: (int16 samples, their sample rate)."""
    with _LOCK:
        engine = _engine()
        status = engine.lib.espeak_SetVoiceByName(voice.encode("ascii"))
        if status == _EE_NOT_FOUND:
            raise _unknown_voice(engine, voice)
        if status != _EE_OK or engine.lib.espeak_SetParameter(_PARAM_RATE, rate, 0) != _EE_OK:
            raise VoiceError(f'{ENGINE_LABEL} could not set voice "{voice}" at rate {rate}.', _REINSTALL)
        data = text.encode("utf-8") + b"\0"
        engine.chunks.clear()
        try:
            status = engine.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            pcm = np.frombuffer(b"".join(engine.chunks), dtype=np.int16).copy()
        finally:
            engine.chunks.clear()
    if status != _EE_OK:
        raise VoiceError(f"{ENGINE_LABEL} failed to speak the line (error {status}).", _REINSTALL)
    return pcm, engine.sample_rate


def _trim(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading and trailing digital silence down to at most EDGE_SILENCE_S."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= SILENCE_LEVEL)
    if not len(loud):
        return pcm[:0]
    keep = int(rate * EDGE_SILENCE_S)
    return pcm[max(0, loud[0] - keep): loud[-1] + 1 + keep]


def _to_48k(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE or not len(pcm):
        return pcm.astype(np.int16)
    out = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE, quality="HQ")
    return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)


def _check(text: str, voice: str, rate: int) -> tuple[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise VoiceError("There is no text to speak.", "Give the line some words.")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT_CHARS:
        raise VoiceError(f"The line is {len(text)} characters long; at most {MAX_TEXT_CHARS} can be spoken.",
                         "Split it into shorter lines.")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise VoiceError("The line contains control characters.", "Remove them and try again.")
    voice = voice.strip().lower() if isinstance(voice, str) else ""
    if not _VOICE_NAME.fullmatch(voice):
        raise VoiceError(f'"{voice}" is not a voice name.',
                         'Use a short name such as "en-us", "en-gb" or "en-us+f3".')
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise VoiceError(f"A speaking rate of {rate!r} words per minute is out of range.",
                         f"Use a whole number from {MIN_RATE} to {MAX_RATE} (175 is ordinary speech).")
    return text, voice


def _cache_file(text: str, voice: str, rate: int, version: str) -> Path:
    key = json.dumps([_CACHE_FORMAT, ENGINE_LABEL, version, voice, rate, SAMPLE_RATE, text])
    return config.cache_dir() / "voice" / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.npy"


def _read_cached(path: Path) -> np.ndarray | None:
    """The cached audio, or None when missing or damaged (it is then rendered and rewritten)."""
    try:
        pcm = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    ok = isinstance(pcm, np.ndarray) and pcm.dtype == np.int16 and pcm.ndim == 1 and len(pcm) > 0
    return pcm if ok else None


def _write_cached(path: Path, pcm: np.ndarray) -> None:
    """Write atomically; a cache that cannot be written only costs the next render."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, pcm, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def render(text: str, *, voice: str = "en-us", rate: int = 175, cache: bool = True) -> np.ndarray:
    """`text` spoken as int16 mono PCM at 48 kHz, edges trimmed; VoiceError when it cannot be.

    `voice`: a name from `voices()`, maybe with a variant ("en-us+f3"); `rate`: words per minute."""
    text, voice = _check(text, voice, rate)
    path = _cache_file(text, voice, rate, engine_version()) if cache else None
    if path is not None and (hit := _read_cached(path)) is not None:
        return hit
    raw, native = _synthesize(text, voice, rate)
    pcm = _to_48k(_trim(raw, native), native)
    if not len(pcm):
        raise VoiceError(f"{ENGINE_LABEL} produced no sound for the line.", "Check the text and the voice.")
    if path is not None:
        _write_cached(path, pcm)
    return pcm
