"""Caller scripts: what a scripted caller says and when, read from a small TOML file.

    name = "Question and answer"

    [target]                  # all optional; the command line can override each
    profile = "PolyAI US"     # a saved profile (its URL, ids and token)
    variant = "think-300"     # variantId
    mode = "end-to-end"
    version = "a1b2c3:7"      # agentVersionOverride: artifactVersion:lambdaDeploymentVersion
    url = "wss://…"           # instead of a profile's URL

    [[step]]
    wait_for_agent = { silence_ms = 700, timeout_ms = 15000 }   # let the greeting finish
    [[step]]
    play = "question.wav"     # 16-bit WAV, relative to this file
    [[step]]
    wait_for_agent = {}       # the reply: it started, then it was quiet for silence_ms
    [[step]]
    pause = 500               # ms
    [[step]]
    barge_in = { play = "interrupt.wav", after_ms = 800, timeout_ms = 15000 }
    [[step]]
    hangup = true

Lines can be written as text instead of WAVs, and keys pressed:

    [[step]]
    say = "I'd like to book a table for two"    # spoken offline by espeak-ng (speech/voice.py)
    [[step]]
    say = { text = "Tomorrow at seven", voice = "en-gb", rate = 160 }
    [[step]]
    dtmf = "1234#"            # keypad tones, in band (audio/dtmf.py)
    [[step]]
    wait_for_agent = { expect = { heard = "table for two", latency_ms_max = 1500 } }
    [[step]]
    barge_in = { say = "Sorry, one more thing", after_ms = 800, expect = { stop_ms_max = 600 } }

    [expect]                  # the whole call (runs/expect.py)
    max_setup_ms = 3000
    no_warnings = true

`wait_for_agent` waits until the agent has spoken and then been quiet for
`silence_ms` (default 700), or `timeout_ms` (default 15,000) passes. `barge_in`
waits until the agent has been speaking for `after_ms`, then plays its WAV over it.
A script that ends without `hangup` hangs up after its last step.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserFacingError
from .expect import ExpectError, ScriptExpect, TurnExpect, parse_script_expect, parse_turn_expect

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KINDS = ("play", "say", "dtmf", "wait_for_agent", "pause", "barge_in", "hangup")
SPOKEN = ("play", "say", "dtmf")          # steps that are a caller's turn
MAX_STEPS = 200
DEFAULT_VOICE, DEFAULT_RATE = "en-us", 175
DTMF_DIGITS = "0123456789*#ABCDabcd"


class ScriptError(UserFacingError):
    pass


@dataclass(frozen=True)
class Target:
    profile: str | None = None
    variant: str | None = None
    mode: str | None = None
    version: str | None = None   # "artifactVersion:lambdaDeploymentVersion"
    url: str | None = None

    @property
    def label(self) -> str:
        parts = [self.profile or self.url or "local demo gateway"]
        if self.variant:
            parts.append(f"variant {self.variant}")
        if self.version:
            parts.append(f"build {self.version}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Line:
    """What the caller says: a WAV, text for the offline voice, or keypad digits."""

    wav: Path | None = None
    text: str | None = None
    voice: str = DEFAULT_VOICE
    rate: int = DEFAULT_RATE
    digits: str | None = None

    def describe(self) -> str:
        if self.digits is not None:
            return f"press {self.digits}"
        if self.text is not None:
            return f"say \"{self.text if len(self.text) <= 40 else self.text[:39] + '…'}\""
        return f"play {self.wav.name if self.wav else '?'}"


@dataclass(frozen=True)
class Step:
    kind: str
    line: Line | None = None     # play, say, dtmf and barge_in
    ms: float = 0.0              # pause length, or barge-in delay (after_ms)
    silence_ms: float = 700.0
    timeout_ms: float = 15_000.0
    expect: TurnExpect | None = None

    @property
    def wav(self) -> Path | None:
        return self.line.wav if self.line else None

    def describe(self) -> str:
        if self.kind in SPOKEN:
            return self.line.describe() if self.line else "?"
        if self.kind == "wait_for_agent":
            return f"wait for the agent ({self.silence_ms:g} ms of quiet, at most {self.timeout_ms:g} ms)"
        if self.kind == "pause":
            return f"pause {self.ms:g} ms"
        if self.kind == "barge_in":
            what = self.line.describe() if self.line else "?"
            return f"barge in ({what}) after {self.ms:g} ms of agent speech"
        return "hang up"


@dataclass(frozen=True)
class Script:
    name: str
    path: Path
    target: Target = Target()
    steps: tuple[Step, ...] = field(default_factory=tuple)
    expect: ScriptExpect = ScriptExpect()


def _number(value: Any, what: str, where: str, *, low: float = 0.0, high: float = 600_000.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ScriptError(f"{where}: {what} must be a number of milliseconds from {low:g} to {high:g}.",
                          "Fix the script and open it again.")
    return float(value)


def _wav(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ScriptError(f"{where}: the WAV file name is missing.",
                          "Give the file, e.g. play = \"hello.wav\".")
    path = (base / value).resolve()
    if not path.is_file():
        raise ScriptError(f"{where}: there is no WAV file {value!r} next to the script.",
                          "Put the WAV beside the script, or fix its name.")
    return path


def _fix(where: str, what: str, action: str = "Fix the script and open it again.") -> ScriptError:
    return ScriptError(f"{where}: {what}", action)


def _said(value: Any, where: str, voice: Any = DEFAULT_VOICE, rate: Any = DEFAULT_RATE) -> Line:
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"text", "voice", "rate"})
        if unknown:
            raise _fix(where, f"say does not know {', '.join(unknown)}.", "Use text, voice and rate.")
        return _said(value.get("text"), where, value.get("voice", voice), value.get("rate", rate))
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise _fix(where, "say needs the words to speak (1-1000 characters).",
                   'Give the line, e.g. say = "I\'d like to book a table".')
    if not isinstance(voice, str) or not voice.strip():
        raise _fix(where, "voice must be an espeak-ng voice name such as en-us or en-gb.")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 80 <= rate <= 450:
        raise _fix(where, "rate must be words per minute, a whole number from 80 to 450.")
    return Line(text=" ".join(value.split()), voice=voice.strip(), rate=rate)


def _digits(value: Any, where: str) -> Line:
    if not isinstance(value, str) or not value or len(value) > 64 or any(c not in DTMF_DIGITS for c in value):
        raise _fix(where, "dtmf takes the keys to press: 0-9, *, # and A-D (at most 64).",
                   'Give the keys, e.g. dtmf = "1234#".')
    return Line(digits=value.upper())


def _options(value: Any, kind: str, where: str, known: set[str]) -> dict:
    if not isinstance(value, dict):
        raise _fix(where, f"{kind} takes a table, e.g. {kind} = {{ timeout_ms = 15000 }}.")
    unknown = sorted(set(value) - known)
    if unknown:
        raise _fix(where, f"{kind} does not know {', '.join(unknown)}.", f"Use {', '.join(sorted(known))}.")
    return value


def _barge_in_line(opts: dict, base: Path, where: str) -> Line:
    if ("play" in opts) == ("say" in opts):
        raise _fix(where, "barge_in needs one of play (a WAV) or say (text).")
    if "play" in opts:
        return Line(wav=_wav(opts["play"], base, where))
    return _said(opts["say"], where, opts.get("voice", DEFAULT_VOICE), opts.get("rate", DEFAULT_RATE))


def _waiting_step(kind: str, value: Any, base: Path, where: str) -> Step:
    known = {"silence_ms", "timeout_ms", "expect"}
    if kind == "barge_in":
        known |= {"play", "say", "voice", "rate", "after_ms"}
    opts = _options(value, kind, where, known)
    try:
        expect = parse_turn_expect(opts["expect"], kind, where) if "expect" in opts else None
    except ExpectError as exc:
        raise ScriptError(exc.message, exc.action) from None
    common = dict(silence_ms=_number(opts.get("silence_ms", 700), "silence_ms", where, low=100),
                  timeout_ms=_number(opts.get("timeout_ms", 15_000), "timeout_ms", where, low=100),
                  expect=expect)
    if kind == "wait_for_agent":
        return Step("wait_for_agent", **common)
    return Step("barge_in", line=_barge_in_line(opts, base, where),
                ms=_number(opts.get("after_ms", 500), "after_ms", where), **common)


def _step(raw: Any, n: int, base: Path) -> Step:
    where = f"step {n}"
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in KINDS:
        raise _fix(where, f"a step is exactly one of {', '.join(KINDS)}.")
    kind, value = next(iter(raw.items()))
    if kind == "play":
        return Step("play", line=Line(wav=_wav(value, base, where)))
    if kind == "say":
        return Step("say", line=_said(value, where))
    if kind == "dtmf":
        return Step("dtmf", line=_digits(value, where))
    if kind == "pause":
        return Step("pause", ms=_number(value, "pause", where))
    if kind == "hangup":
        return Step("hangup")
    return _waiting_step(kind, value, base, where)


def _target(raw: Any) -> Target:
    if raw is None:
        return Target()
    if not isinstance(raw, dict):
        raise ScriptError("[target] must be a table.", "Fix the script and open it again.")
    unknown = sorted(set(raw) - {"profile", "variant", "mode", "version", "url"})
    if unknown or any(not isinstance(v, str) for v in raw.values()):
        raise ScriptError(f"[target]: unknown or non-text fields {', '.join(unknown) or ''}".rstrip() + ".",
                          "Use profile, variant, mode, version and url, each as text.")
    return Target(**{k: v.strip() or None for k, v in raw.items()})


def parse_script(text: str, path: Path) -> Script:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScriptError(f"{path.name} is not valid TOML ({exc}).",
                          "Fix the script and open it again.") from None
    unknown = sorted(set(doc) - {"name", "target", "step", "expect"})
    if unknown:
        raise ScriptError(f"{path.name}: unknown top-level field(s) {', '.join(unknown)}.",
                          "A script has name, [target], [expect] and [[step]] entries.")
    raw_steps = doc.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScriptError(f"{path.name} has no steps.",
                          "Add [[step]] entries (say, play, wait_for_agent, …).")
    if len(raw_steps) > MAX_STEPS:
        raise ScriptError(f"{path.name} has {len(raw_steps)} steps; at most {MAX_STEPS}.",
                          "Split the script.")
    steps = tuple(_step(raw, n, path.parent) for n, raw in enumerate(raw_steps, 1))
    name = doc.get("name", path.stem)
    try:
        expect = parse_script_expect(doc.get("expect"))
    except ExpectError as exc:
        raise ScriptError(exc.message, exc.action) from None
    return Script(str(name)[:120], path, _target(doc.get("target")), steps, expect)


def load_script(path: str | Path) -> Script:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"There is no script {str(path)!r}.", "Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"The script {path.name} cannot be read ({exc}).", "Check the file.") from None
    return parse_script(text, path)
