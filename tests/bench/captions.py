"""Captions benchmark: what live transcription costs a call, and how fast and how right it is.

One private PulseAudio server (tests/helpers/sound_server.py: `micsink`, whose monitor is the
virtual microphone, and the virtual speaker) and one local gateway (echo agent). The same
spoken phrases (espeak-ng, speech/voice.py) go into the microphone for each client in turn:

  polyphone          `polyphone call --input VirtualMic --output default --no-processing`
  polyphone-asr      the same with --captions: both sides recognised live (pocketsphinx, in
                     its own process)

Per client, from the call's own JSON: playout under-runs, concealed audio, microphone audio
dropped, the event loop's lag (sampled every 20 ms: p99 and worst), and CPU (% of one core:
the polyphone process, and the recogniser's process). For polyphone-asr also: caption lag,
from the end of a phrase played into the microphone to its "[you] ..." line on stderr (the
agent's echo likewise, "[agent] ..."), median and p95; and the word error rate of each side
against the phrases.

Run: .venv/bin/python tests/bench/captions.py [--repeat 1] [--gap 3.0]
Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT / "tests"), str(ROOT / "app")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from helpers import sound_server  # noqa: E402
from polyphone.localgw import LocalGateway  # noqa: E402
from polyphone.speech import voice  # noqa: E402
from polyphone.speech.score import wer  # noqa: E402

RATE = 48_000
TOKEN = "bench-captions-token"
LEAD_S = 4.0
PHRASES = ("I would like to book a table for two", "What time do you open tomorrow",
           "Please cancel my order", "I want to speak to a manager", "Can you repeat that please",
           "I lost my credit card", "Do you have a table by the window", "Thank you very much goodbye")
CLIENTS = ("polyphone", "polyphone-asr")
GOALS = {"extra_underruns": "0", "extra_concealed_ms": "0", "loop_lag_p99_ms": "<= 50",
         "caption_lag_p95_s": "<= 1.5"}


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def feed(gap_s: float) -> tuple[np.ndarray, list[float]]:
    """The microphone's audio, and each phrase's end (s from the feed's start)."""
    parts, ends, t = [np.zeros(int(LEAD_S * RATE), np.int16)], [], LEAD_S
    for phrase in PHRASES:
        pcm = voice.render(phrase)
        parts += [pcm, np.zeros(int(gap_s * RATE), np.int16)]
        t += len(pcm) / RATE
        ends.append(t)
        t += gap_s
    return np.concatenate(parts), ends


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process itself, in seconds (not its children: the recognisers
    are counted on their own, and once they end they would be counted twice)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12)) / ticks


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the recognisers)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


async def one_call(name: str, server: sound_server.SoundServer, url: str, audio: np.ndarray,
                   ends: list[float], work: Path) -> dict[str, Any]:
    seconds = len(audio) / RATE + 2.0
    args = ["call", "--url", url, "--mode", "echo", "--no-ice-fetch", "--input", "VirtualMic",
            "--output", "default", "--no-processing", "--duration", f"{seconds:.1f}", "--json"]
    if name == "polyphone-asr":
        args.append("--captions")
    env = dict(server.child_env(), POLYPHONE_TOKEN=TOKEN, POLYPHONE_CONFIG_DIR=str(work / "config"),
               POLYPHONE_DATA_DIR=str(work / "data"), PYTHONUNBUFFERED="1",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "polyphone", *args, env=env,
                                                stdout=pipe, stderr=pipe)
    lines: list[tuple[float, str]] = []
    started: dict[str, float] = {}
    cpu: dict[str, float] = {}

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            lines.append((time.monotonic(), line))
            if line.startswith("[peer] connected") and "feed" not in started:
                await asyncio.sleep(1.0)
                started["feed"] = time.monotonic()
                server.play_into_mic(audio, wait=False)

    async def sample_cpu() -> None:
        while proc.returncode is None:
            cpu["polyphone"] = cpu_seconds(proc.pid)
            for n, child in enumerate(children(proc.pid), 1):
                cpu[f"recogniser {n}"] = cpu_seconds(child)
            await asyncio.sleep(0.5)

    reader, sampler = asyncio.ensure_future(read_stderr()), asyncio.ensure_future(sample_cpu())
    assert proc.stdout is not None
    out = await asyncio.wait_for(proc.stdout.read(), seconds + 60)
    await proc.wait()
    await reader
    sampler.cancel()
    result = json.loads(out.decode().strip().splitlines()[-1])
    return figures(name, result, lines, started.get("feed"), ends, cpu, seconds)


def caption_lags(lines: list[tuple[float, str]], feed_at: float | None, ends: list[float],
                 tag: str) -> tuple[list[float], list[str]]:
    """Per phrase: the first caption line of `tag` after its end, and the seconds it took."""
    said = [(t, line[len(tag):].strip()) for t, line in lines if line.startswith(tag)]
    lags, texts = [], []
    if feed_at is None:
        return lags, texts
    for i, end in enumerate(ends):
        at = feed_at + end
        nxt = feed_at + ends[i + 1] if i + 1 < len(ends) else float("inf")
        hit = next(((t, text) for t, text in said if at - 0.5 <= t < nxt), None)
        if hit is not None:
            lags.append(hit[0] - at)
            texts.append(hit[1])
        else:
            texts.append("")
    return lags, texts


def figures(name: str, result: dict, lines: list[tuple[float, str]], feed_at: float | None,
            ends: list[float], cpu: dict[str, float], seconds: float) -> dict[str, Any]:
    audio = result.get("audio") or {}
    out: dict[str, Any] = {
        "client": name, "exit_code": result.get("exit_code"),
        "underruns": audio.get("playout_underruns"), "concealed_ms": audio.get("concealed_ms"),
        "mic_dropped_ms": audio.get("capture_dropped_ms"), "loop_lag_ms": result.get("loop_lag_ms"),
        "cpu_percent_of_core": {k: round(100 * v / seconds, 1) for k, v in cpu.items()},
    }
    if name == "polyphone-asr":
        for side, tag in (("caller", "[you] "), ("agent", "[agent] ")):
            lags, texts = caption_lags(lines, feed_at, ends, tag)
            ordered = sorted(lags)
            out[side] = {
                "captioned": f"{len(lags)} of {len(ends)}",
                "caption_lag_s": {
                    "median": round(statistics.median(ordered), 2) if ordered else None,
                    "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2) if ordered else None},
                "wer": round(wer(" ".join(PHRASES), " ".join(texts)), 3),
                "heard": texts}
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    why = sound_server.available()
    if why:
        raise SystemExit(why)
    audio, ends = feed(args.gap)
    root = Path(tempfile.mkdtemp(prefix="polyphone-bench-captions-"))
    server = sound_server.start(root / "pulse")
    results: list[dict] = []
    try:
        server.warm_up()
        async with LocalGateway(tokens=[TOKEN], agent="echo") as gateway:
            for r in range(args.repeat):
                for name in CLIENTS:
                    log(f"{name} (round {r + 1}): {len(audio) / RATE:.0f} s of call")
                    work = root / f"{name}-{r}"
                    results.append(await one_call(name, server, gateway.url, audio, ends, work))
                    await asyncio.sleep(1.0)
    finally:
        server.stop()
    return {"bench": "captions", "settings": {"phrases": len(PHRASES), "gap_s": args.gap,
                                               "repeat": args.repeat, "cpus": os.cpu_count(),
                                               "loadavg_at_end": os.getloadavg()},
            "goals": GOALS, "results": results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="rounds of the two clients (default 1)")
    ap.add_argument("--gap", type=float, default=3.0, help="silence after each phrase, s (default 3)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    json.dump(asyncio.run(main(parse_args())), sys.stdout, indent=1)
    print()
