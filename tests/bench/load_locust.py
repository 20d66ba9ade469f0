"""Locust beside `polyphone call --concurrency`: how many calls one worker process carries.

One local gateway (echo agent) in its own process. At N = 1, 4, 8, 12, 16, 24, … concurrent
echo calls playing the same speech for --seconds, in the same run, one after the other:

  concurrency   `polyphone call --concurrency N --play speech` (tests/bench/load.py's step)
  locust        `polyphone load --workers 1 --users N --spawn-rate N --iterations 1 --play speech
                --duration S --headless`: Locust's master and ONE worker process, whose calls
                run on its asyncio loop in a native thread (polyphone/load/bridge.py)

Both are judged by the same deadlines (services/load_run.py): at most 1 % of frames sent late,
at most 1 % of receive intervals over 60 ms, the loop's lag p99 under 20 ms; for the worker
they come from the figures it reports to the master (PREFIX_workers.json). A side stops
climbing once it missed them (or a call failed). Memory per call: the worker's peak RSS at N
less its peak RSS with one call, over N - 1.

Run: .venv/bin/python tests/bench/load_locust.py [--seconds 15] [--max 32]
Prints one JSON object on stdout (progress on stderr). Needs the `load` extra.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, STEPS, cpu_ticks, step  # noqa: E402  (tests/bench/load.py)

TOKEN = "load-locust-bench-4e1f"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEADLINE_FIGURES = ("send_late_share", "receive_gap_share", "loop_lag_ms", "deadlines_met")


def log(text: str) -> None:
    print(f"[load-locust {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def locust_step(n: int, url: str, gateway_pid: int, seconds: float, env: dict[str, str],
                      out: Path) -> dict[str, Any]:
    speech = ROOT / "resources/sounds/caller-demo.wav"
    prefix = out / f"n{n}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "load", "--url", url, "--mode", "echo", "--no-ice-fetch",
        "--workers", "1", "--users", str(n), "--spawn-rate", str(n), "--iterations", "1",
        "--play", str(speech), "--duration", str(seconds), "--headless", "--run-time", f"{seconds + 90:.0f}s",
        "--csv", str(prefix), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    g0, t0 = cpu_ticks(gateway_pid), time.monotonic()
    code = await proc.wait()
    wall = time.monotonic() - t0
    try:
        [figures] = json.loads(Path(f"{prefix}_workers.json").read_text()).values()
        stats = (out / f"n{n}_stats.csv").read_text().splitlines()
    except (OSError, ValueError):
        return {"concurrency": n, "error": f"no figures from the worker (exit {code})"}
    setup = next((line.split(",") for line in stats if line.startswith("call,setup,")), None)
    failed = int(setup[3]) if setup else n
    return {"concurrency": n, "exit_code": code, "wall_s": round(wall, 1),
            "gateway_cpu_percent_of_core": round(100 * (cpu_ticks(gateway_pid) - g0) / CLK_TCK / wall, 1),
            "connected": n - failed, "setup_ms_median": float(setup[4]) if setup else None,
            "peak_active": figures["peak_active"], "worker_rss_mb": figures["rss_mb"],
            **{k: figures[k] for k in DEADLINE_FIGURES}}


def carried(steps: list[dict[str, Any]]) -> int:
    good = [s["concurrency"] for s in steps
            if s.get("deadlines_met") and s.get("connected") == s["concurrency"]]
    return max(good) if good else 0


async def main(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="polyphone-load-locust-"))
    env = dict(os.environ, POLYPHONE_TOKEN=TOKEN, POLYPHONE_CONFIG_DIR=str(home / "config"),
               POLYPHONE_DATA_DIR=str(home / "data"), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               POLYPHONE_GATEWAY_TOKENS=TOKEN)
    gw = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyphone", "gateway", "--agent", "echo", "--log-level", "warning",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    sides: dict[str, list[dict[str, Any]]] = {"concurrency": [], "locust": []}
    try:
        assert gw.stdout is not None
        url = (await asyncio.wait_for(gw.stdout.readline(), 30)).decode().split()[1]
        for n in (s for s in (1, *STEPS[2:]) if s <= args.max):
            for side in sides:
                if sides[side] and carried(sides[side]) < sides[side][-1]["concurrency"]:
                    continue   # this side already missed its deadlines
                log(f"{side}: {n} calls for {args.seconds:g} s")
                result = await (step(n, url, gw.pid, args.seconds, env) if side == "concurrency"
                                else locust_step(n, url, gw.pid, args.seconds, env, home))
                log(json.dumps(result))
                sides[side].append(result)
            if all(carried(s) < s[-1]["concurrency"] for s in sides.values()):
                break
    finally:
        gw.terminate()
        await gw.wait()
    locust = sides["locust"]
    one = next((s["worker_rss_mb"] for s in locust if s["concurrency"] == 1), None)
    best = next((s for s in locust if s["concurrency"] == carried(locust) and s["concurrency"] > 1), None)
    per_call = round((best["worker_rss_mb"] - one) / (best["concurrency"] - 1), 1) if best and one else None
    return {"bench": "load_locust", "seconds_per_step": args.seconds, "cpus": os.cpu_count(),
            "criterion": "<= 1 % frames sent late (> 20 ms), <= 1 % receive gaps (> 60 ms), "
                         "loop lag p99 < 20 ms",
            "carries": {"concurrency (one process)": carried(sides["concurrency"]),
                        "locust (one worker process)": carried(locust)},
            "locust_memory_per_call_mb": per_call, "steps": sides}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each step's calls (default 15)")
    ap.add_argument("--max", type=int, default=32, help="largest concurrency to try (default 32)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    json.dump(asyncio.run(main(parse_args())), sys.stdout, indent=1)
    print()
