"""The caller's lines as audio: WAVs read, text spoken by the offline voice, keys as DTMF tones.

Rendering takes ~0.1 s a line the first time (espeak-ng; cached on disk by text and voice
afterwards), so `render_all` runs in a worker thread before the call starts, never on the
loop during it. The end of the caller's speech used for latency is the rendered audio's
last loud frame, as it is a WAV's.
"""

from __future__ import annotations

import numpy as np

from ..audio import dtmf
from ..audio.files import read_wav
from .script import Line, Script, ScriptError


def render(line: Line) -> np.ndarray:
    """int16 mono at 48 kHz."""
    if line.wav is not None:
        return read_wav(line.wav)
    if line.digits is not None:
        return dtmf.tones(line.digits)
    from ..speech import voice  # loads libespeak-ng: only for scripts that speak

    return voice.render(line.text or "", voice=line.voice, rate=line.rate)


def render_all(script: Script) -> dict[Line, np.ndarray]:
    """Every line of the script, rendered once (a repeated line is rendered once)."""
    from ..speech.voice import VoiceError

    out: dict[Line, np.ndarray] = {}
    for n, step in enumerate(script.steps, 1):
        if step.line is None or step.line in out:
            continue
        try:
            out[step.line] = render(step.line)
        except VoiceError as exc:
            raise ScriptError(f"step {n}: {exc.message}", exc.action) from None
        except ValueError as exc:
            raise ScriptError(f"step {n}: {exc}", "Fix the script and open it again.") from None
    return out
