"""`polyphone --self-test`: is this installation able to make a call? No network needed.

One line per check, `PASS name: what was found` or `FAIL name: what went wrong — fix: what to
do`, or `WARN name: what is degraded` for a check that works with less; the exit code is 0 when
no check failed (a WARN is not a failure), 1 otherwise. The checks:

- resources  the bundled prompts, styles, icons and desktop entry are found
- qt         Qt's platform plugin loads and a window with SVG icons can be made (in a child
             process: a missing platform plugin aborts the process that tries it)
- audio      PortAudio loads and lists devices. Finding no device passes (a machine with no
             sound card or sound server has none): the line says so
- processing libwebrtc's echo canceller (livekit's native library) loads and runs
- keyring    the OS keyring answers a read
- rtc        each hook into aiortc's, aioice's and PyAV's internals (polyphone.rtc_internals)
             applies to the installed versions: OK, or WARN with what is degraded (a call
             still works, with the libraries' stock behaviour there)
- call       a loopback call to the in-process local gateway's echo agent connects and the
             tone it sends comes back
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

QT_PROBE_FLAG = "--qt-probe"
QT_TIMEOUT = 30.0
KEYRING_TIMEOUT = 10.0
CALL_TIMEOUT = 15.0
ECHO_WANTED_S = 0.5          # this much of the tone must come back ...
ECHO_MIN_DBFS = -40.0        # ... at least this loud (it is sent at -12 dBFS)
QT_LIBS_FIX = ("install Qt's X11 libraries (Debian/Ubuntu: sudo apt-get install libxcb-cursor0 "
               "libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 "
               "libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libx11-xcb1 libegl1 libgl1 "
               "libfontconfig1); QT_DEBUG_PLUGINS=1 names the library that is missing")
REINSTALL_FIX = "reinstall Polyphone: this installation is incomplete"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False  # passed, with something degraded

    def line(self) -> str:
        if self.ok and self.warn:
            return f"WARN {self.name}: {_one_line(self.detail)}"
        if self.ok:
            return f"PASS {self.name}: {_one_line(self.detail)}"
        return f"FAIL {self.name}: {_one_line(self.detail)} — fix: {_one_line(self.fix or REINSTALL_FIX)}"


def _one_line(text: str) -> str:
    """Multi-line library messages (numpy's ImportError is 20 lines) end with the cause."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if len(lines) > 1 else (lines[0] if lines else "")


class Failed(Exception):
    """A check failed: the message says what happened, `fix` what to do."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


class Degraded(Exception):
    """A check passed with something degraded: the message says what."""


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except Degraded as exc:
        return Check(name, True, str(exc), warn=True)
    except Failed as exc:
        return Check(name, False, str(exc), exc.fix)
    except Exception as exc:  # a check must report, never crash the self-test
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _in_thread(fn: Callable[[], object], timeout: float, what: str) -> object:
    """fn() in a daemon thread (a hung D-Bus call must not hang the self-test)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"self-test {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Failed(f"{what} did not answer within {timeout:g} s",
                     "check that the service is running and not waiting for a password")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


# --- the checks ---------------------------------------------------------------------


RESOURCES = ("sounds/greeting.wav", "sounds/caller-demo.wav", "styles/polyphone.qss",
             "icons/polyphone.svg", "polyphone.desktop")


def check_resources() -> str:
    from ..audio.files import SAMPLE_RATE, read_wav
    from ..paths import resource

    try:
        found = [resource(rel) for rel in RESOURCES]
    except FileNotFoundError as exc:
        raise Failed(str(exc)) from None
    seconds = len(read_wav(found[0])) / SAMPLE_RATE
    if seconds < 0.5:
        raise Failed(f"the bundled greeting {found[0]} holds only {seconds:.1f} s of audio")
    root = found[0].parents[1]
    return f"{len(found)} files in {root} (greeting {seconds:.1f} s)"


def qt_command() -> list[str]:
    """How to start this Polyphone again: the frozen app itself, or this Python with -m."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--self-test", QT_PROBE_FLAG]
    return [sys.executable, "-m", "polyphone", "--self-test", QT_PROBE_FLAG]


def check_qt() -> str:
    try:
        out = subprocess.run(qt_command(), capture_output=True, text=True, timeout=QT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failed(f"Qt did not start within {QT_TIMEOUT:g} s", QT_LIBS_FIX) from None
    report = None
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            report = json.loads(line)
            break
    if report is None:  # the child died (a platform plugin that cannot load aborts it)
        said = [ln for ln in out.stderr.splitlines() if ln.strip()]
        why = said[-1] if said else f"exit code {out.returncode}"
        for ln in said:
            if "platform plugin" in ln or "xcb" in ln:
                why = ln
                break
        raise Failed(f"Qt could not start ({why.strip()})", QT_LIBS_FIX)
    if report.get("error"):
        raise Failed(report["error"], report.get("fix", ""))
    return (f"Qt {report['qt']} on platform {report['platform']}, "
            f"icons load ({', '.join(report['image_formats'])})")


def check_audio() -> str:
    from ..audio import devices

    try:
        sd = devices.portaudio()
        found = devices.list_devices()
    except devices.DeviceError as exc:
        raise Failed(exc.message, exc.action) from None
    version = sd.get_portaudio_version()[1].split(",")[0]
    path = str(getattr(sd, "_libname", ""))
    bundle = getattr(sys, "_MEIPASS", None)
    library = ("bundled " if bundle and path.startswith(bundle) else "") + os.path.basename(path)
    inputs = sum(d.kind == devices.INPUT for d in found)
    outputs = len(found) - inputs
    head = f"{version} ({library}) via {devices.current_backend()}"
    if not found:
        return (f"{head}: no microphones or speakers found (none connected, or no sound server "
                "running); PortAudio itself works")
    return f"{head}: {inputs} microphones, {outputs} speakers"


def check_processing() -> str:
    import numpy as np

    from ..audio.processing import AudioProcessor

    processor = AudioProcessor()
    if not processor.available:
        raise Failed(f"echo cancellation is not available: {processor.why}",
                     "pip install livekit (from source), or " + REINSTALL_FIX)
    frame = np.zeros(processor.frame_samples, np.int16)
    processor.process_render(frame)
    processor.process_capture(frame)
    return "libwebrtc echo canceller, noise suppressor and gain control run"


SPEECH_LINE = "I would like to book a table for two"


def check_speech() -> str:
    """A line spoken by the bundled voice and recognised by the bundled recogniser, in its own
    process as during a call (`polyphone --asr-worker`)."""
    from ..speech import voice
    from ..speech.phrases import transcribe_pcm
    from ..speech.remote import RemoteRecognizer
    from ..speech.transcribe import TranscriptionError

    try:
        pcm = voice.render(SPEECH_LINE, cache=False)
        recognizer = RemoteRecognizer("pocketsphinx")
    except (voice.VoiceError, TranscriptionError) as exc:
        raise Failed(exc.message, exc.action or REINSTALL_FIX) from None
    try:
        heard = transcribe_pcm(recognizer, pcm)
    finally:
        recognizer.close()
    if not heard.strip():
        raise Failed(f"{recognizer.label} recognised nothing in {voice.ENGINE_LABEL}'s speech", REINSTALL_FIX)
    return f"{voice.ENGINE_LABEL} {voice.engine_version()} said '{SPEECH_LINE}'; {recognizer.label} " \
           f"heard '{heard}'"


def check_keyring() -> str:
    from ..secrets import KeyringStore, SecretStoreError

    store = KeyringStore()

    def read() -> str:
        store.get("self-test")  # a key that is never written: None is the answer
        return store.backend_name()

    try:
        name = _in_thread(read, KEYRING_TIMEOUT, "the keyring")
    except SecretStoreError as exc:
        raise Failed(exc.message, exc.action) from None
    return f"{name} answers"


def check_rtc() -> str:
    from .. import rtc_internals

    hooks = rtc_internals.status()
    versions = ", ".join(f"{lib} {v}" for lib, v in rtc_internals.VERSIONS.items())
    listed = "; ".join(f"{h.name} OK" if h.ok else f"{h.name} WARN ({h.why}: {h.degraded})"
                       for h in hooks)
    if all(h.ok for h in hooks):
        return f"{versions}: {listed}"
    raise Degraded(f"{versions}: {listed}")


def check_call() -> str:
    return asyncio.run(_loopback_call())


async def _loopback_call() -> str:
    import contextlib

    from ..audio.analysis import level_dbfs
    from ..audio.files import SAMPLE_RATE, MemorySink, ToneSource
    from ..engine.call import Call
    from ..services.requests import Target
    from .call import request_for

    # The request as every call builds it: no profile, no URL -> the embedded gateway, whose
    # echo agent answers mode "echo"; it stops when the stack closes.
    async with contextlib.AsyncExitStack() as stack:
        request = await request_for(Target(mode="echo"), stack)
        sink = MemorySink()
        call = Call(request, ToneSource(), sink)
        task = asyncio.ensure_future(call.run())
        deadline = time.monotonic() + CALL_TIMEOUT
        wanted = int(ECHO_WANTED_S * SAMPLE_RATE)
        while (len(sink.samples[-wanted:]) < wanted or level_dbfs(sink.samples[-wanted:]) < ECHO_MIN_DBFS) \
                and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await call.hangup()
        result = await task
    if result.error is not None:
        raise Failed(f"the loopback call failed: {result.error.message}", result.error.action)
    if not result.connected:
        raise Failed(f"the loopback call did not connect ({result.reason})")
    back = sink.samples[-wanted:]
    level = level_dbfs(back) if len(back) else float("-inf")
    if len(back) < wanted or level < ECHO_MIN_DBFS:
        raise Failed(f"the loopback call connected but {len(sink.samples) / SAMPLE_RATE:.2f} s of audio "
                     f"came back at {level:.0f} dBFS (wanted {ECHO_WANTED_S} s above {ECHO_MIN_DBFS:.0f})")
    ice = result.timings_ms.get("ice_connected")
    return (f"connected to the local gateway in {ice:.0f} ms; the echo agent returned "
            f"{len(sink.samples) / SAMPLE_RATE:.1f} s of audio at {level:.0f} dBFS")


CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("resources", check_resources), ("qt", check_qt), ("audio", check_audio),
    ("processing", check_processing), ("speech", check_speech), ("keyring", check_keyring),
    ("rtc", check_rtc),
    ("call", check_call),
)


def run(argv: list[str]) -> int:
    """`polyphone --self-test [...]`: argv is what follows --self-test."""
    if argv:
        print(f"error: --self-test takes no arguments (got {' '.join(argv)})", file=sys.stderr)
        return 2
    from .. import APP_NAME, __version__

    where = sys.executable if getattr(sys, "frozen", False) else os.path.dirname(os.path.dirname(__file__))
    print(f"{APP_NAME} {__version__} self-test ({where})", flush=True)
    failed = 0
    for name, fn in CHECKS:
        check = _run(name, fn)
        failed += not check.ok
        print(check.line(), flush=True)
    print("all checks passed" if not failed else f"{failed} of {len(CHECKS)} checks failed", flush=True)
    return 1 if failed else 0
