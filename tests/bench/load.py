"""Load: how many concurrent echo calls one Polyphone process carries on this machine.

A local gateway (echo agent) runs in its own process; `polyphone call --concurrency N
--play speech --json` runs against it for --seconds at N = 1, 2, 4, 8, 12, 16, 24, …
(until the deadlines are missed, or --max). The criterion is the CLI's own
(app/polyphone/services/load_run.py): no more than 1 % of frames sent late (> 20 ms after due),
no more than 1 % of receive intervals over 60 ms, and the event loop's p99 lag under
20 ms. CPU is sampled from /proc for the client and the gateway separately: both share
this machine's cores, so the gateway's share is load the client would not carry against
a remote gateway; the figures say how much it was.

Run: .venv/bin/python tests/bench/load.py [--seconds 20] [--max 48]
Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "load-bench-token-61c0f2"
STEPS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


async def step(n: int, url: str, gateway_pid: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    speech = ROOT / "resources/sounds/caller-demo.wav"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "call", "--url", url, "--mode", "echo", "--no-ice-fetch",
        "--concurrency", str(n), "--duration", str(seconds), "--play", str(speech), "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    g0, c0, t0 = cpu_ticks(gateway_pid), 0, time.monotonic()
    client_ticks = 0
    while proc.returncode is None:  # sample the client's CPU while it lives (it is gone after)
        client_ticks = max(client_ticks, cpu_ticks(proc.pid))
        try:
            await asyncio.wait_for(proc.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    out = await proc.stdout.read() if proc.stdout else b""
    wall = time.monotonic() - t0
    gateway = (cpu_ticks(gateway_pid) - g0) / CLK_TCK
    try:
        report = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"concurrency": n, "error": f"no JSON from the client (exit {proc.returncode})"}
    agg = report["aggregate"]
    return {"concurrency": n, "exit_code": proc.returncode, "wall_s": round(wall, 1),
            "client_cpu_percent_of_core": round(100 * (client_ticks - c0) / CLK_TCK / wall, 1),
            "gateway_cpu_percent_of_core": round(100 * gateway / wall, 1),
            **{k: agg[k] for k in ("connected", "failures", "setup_ms", "send_late_share",
                                   "receive_gap_share", "loop_lag_ms", "deadlines_met")}}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="polyphone-load-"))
    env = dict(os.environ, POLYPHONE_TOKEN=TOKEN, POLYPHONE_CONFIG_DIR=str(home / "config"),
               POLYPHONE_DATA_DIR=str(home / "data"), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               POLYPHONE_GATEWAY_TOKENS=TOKEN)
    gw = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "gateway", "--agent", "echo", "--log-level", "warning",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    steps: list[dict[str, Any]] = []
    try:
        assert gw.stdout is not None
        url = (await asyncio.wait_for(gw.stdout.readline(), 30)).decode().split()[1]
        for n in (s for s in STEPS if s <= args.max):
            log(f"{n} calls for {args.seconds:g} s")
            result = await step(n, url, gw.pid, args.seconds, env)
            log(json.dumps(result))
            steps.append(result)
            if not result.get("deadlines_met") or result.get("connected") != n:
                break
    finally:
        gw.terminate()
        await gw.wait()
    carried = [s["concurrency"] for s in steps
               if s.get("deadlines_met") and s.get("connected") == s["concurrency"]]
    return {"bench": "load", "seconds_per_step": args.seconds, "cpus": os.cpu_count(),
            "criterion": "<= 1 % frames sent late (> 20 ms), <= 1 % receive gaps (> 60 ms), "
                         "loop lag p99 < 20 ms",
            "carries": max(carried) if carried else 0,
            "first_missed": next((s["concurrency"] for s in steps if s["concurrency"] not in carried), None),
            "steps": steps}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each step's calls (default 20)")
    ap.add_argument("--max", type=int, default=64, help="largest concurrency to try (default 64)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    json.dump(asyncio.run(main(parse_args())), sys.stdout, indent=1)
    print()
