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

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KINDS = ("play", "wait_for_agent", "pause", "barge_in", "hangup")
MAX_STEPS = 200


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
class Step:
    kind: str
    wav: Path | None = None
    ms: float = 0.0              # pause length, or barge-in delay (after_ms)
    silence_ms: float = 700.0
    timeout_ms: float = 15_000.0

    def describe(self) -> str:
        if self.kind == "play":
            return f"say {self.wav.name if self.wav else '?'}"
        if self.kind == "wait_for_agent":
            return f"wait for the agent ({self.silence_ms:g} ms of quiet, at most {self.timeout_ms:g} ms)"
        if self.kind == "pause":
            return f"pause {self.ms:g} ms"
        if self.kind == "barge_in":
            return f"barge in with {self.wav.name if self.wav else '?'} after {self.ms:g} ms of agent speech"
        return "hang up"


@dataclass(frozen=True)
class Script:
    name: str
    path: Path
    target: Target = Target()
    steps: tuple[Step, ...] = field(default_factory=tuple)


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


def _step(raw: Any, n: int, base: Path) -> Step:
    where = f"step {n}"
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in KINDS:
        raise ScriptError(f"{where}: a step is exactly one of {', '.join(KINDS)}.",
                          "Fix the script and open it again.")
    kind, value = next(iter(raw.items()))
    if kind == "play":
        return Step("play", wav=_wav(value, base, where))
    if kind == "pause":
        return Step("pause", ms=_number(value, "pause", where))
    if kind == "hangup":
        return Step("hangup")
    opts = value if isinstance(value, dict) else None
    if opts is None:
        raise ScriptError(f"{where}: {kind} takes a table, e.g. {kind} = {{ timeout_ms = 15000 }}.",
                          "Fix the script and open it again.")
    known = {"silence_ms", "timeout_ms"} | ({"play", "after_ms"} if kind == "barge_in" else set())
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ScriptError(f"{where}: {kind} does not know {', '.join(unknown)}.",
                          f"Use {', '.join(sorted(known))}.")
    common = dict(silence_ms=_number(opts.get("silence_ms", 700), "silence_ms", where, low=100),
                  timeout_ms=_number(opts.get("timeout_ms", 15_000), "timeout_ms", where, low=100))
    if kind == "wait_for_agent":
        return Step("wait_for_agent", **common)
    return Step("barge_in", wav=_wav(opts.get("play"), base, where),
                ms=_number(opts.get("after_ms", 500), "after_ms", where), **common)


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
    unknown = sorted(set(doc) - {"name", "target", "step"})
    if unknown:
        raise ScriptError(f"{path.name}: unknown top-level field(s) {', '.join(unknown)}.",
                          "A script has name, [target] and [[step]] entries.")
    raw_steps = doc.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScriptError(f"{path.name} has no steps.", "Add [[step]] entries (play, wait_for_agent, …).")
    if len(raw_steps) > MAX_STEPS:
        raise ScriptError(f"{path.name} has {len(raw_steps)} steps; at most {MAX_STEPS}.",
                          "Split the script.")
    steps = tuple(_step(raw, n, path.parent) for n, raw in enumerate(raw_steps, 1))
    name = doc.get("name", path.stem)
    return Script(str(name)[:120], path, _target(doc.get("target")), steps)


def load_script(path: str | Path) -> Script:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"There is no script {str(path)!r}.", "Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"The script {path.name} cannot be read ({exc}).", "Check the file.") from None
    return parse_script(text, path)
