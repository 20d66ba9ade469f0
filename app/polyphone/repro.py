"""Repro bundles: one .zip a person attaches to a bug report for an agent's builders.

It holds the stereo recording, the per-second stats, the event (signaling) log, the
per-turn latency table, the app, OS and library versions, the sessionId and callSid, and a
README saying what each file is. Nothing in it may carry a token: the engine never logs
one, and `write_bundle` also replaces any token it is given with "[token]". Used for
scripted runs (runs/report.py) and for any call in the window's history.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
import zipfile
from pathlib import Path
from typing import Any

from . import __version__

README = """A Polyphone repro bundle: one call.
recording.wav  stereo, caller left, agent right (when the call was recorded)
report.json    the call as a whole (and report.html, for a scripted run)
stats.json     per-second media statistics (RTT, jitter, loss, packets, bit rates)
signaling.log  the event log: signaling, ICE, DTLS, audio, quality warnings
turns.csv      per-turn response latency (and barge-in figures, for a scripted run)
facts.json     Polyphone, Python, OS and library versions; the sound devices; sessionId, callSid
"""


def facts(**extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"polyphone": __version__, "python": sys.version.split()[0],
                           "os": platform.platform(), "machine": platform.machine()}
    for name in ("aiortc", "av", "aioice", "websockets", "numpy", "sounddevice"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            out[name] = None
    out.update(extra)
    return out


def table_csv(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(fields)
    for row in rows:
        w.writerow(["" if row.get(f) is None else row.get(f) for f in fields])
    return buf.getvalue()


def log_text(log: list[dict[str, Any]]) -> str:
    return "".join(f"{e.get('t', 0):9.3f} {e.get('level', ''):7} [{e.get('source', '')}] "
                   f"{e.get('text', '')}\n" for e in log)


def scrub(text: str, token: str | None) -> str:
    return text.replace(token, "[token]") if token and len(token) >= 8 else text


def write_bundle(dest: Path, *, report: dict[str, Any], stats: list[dict[str, Any]],
                 log: list[dict[str, Any]], turns_csv: str, session_id: str | None,
                 call_sid: str | None, recording: Path | None = None,
                 devices: dict[str, Any] | None = None, extra_files: dict[str, str] | None = None,
                 token: str | None = None) -> Path:
    entries = {
        "README.txt": README,
        "report.json": json.dumps(report, indent=1, default=str),
        "stats.json": json.dumps(stats, indent=1),
        "signaling.log": log_text(log),
        "turns.csv": turns_csv,
        "facts.json": json.dumps(facts(sessionId=session_id, callSid=call_sid, devices=devices or {}),
                                 indent=1),
        **(extra_files or {}),
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in entries.items():
            z.writestr(name, scrub(text, token))
        if recording is not None and recording.is_file():
            z.write(recording, "recording.wav")
    return dest
