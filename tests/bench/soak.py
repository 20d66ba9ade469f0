"""Soak: one long echo call through the real audio path, and what drifts over it.

The call is `tests/bench/audio_latency.py`'s (virtual PulseAudio devices, the local
gateway's echo agent, a click every second), made `--minutes` long (default 30).
This prints the figures that matter over time, from that run:

  rss          Polyphone's RSS 60 s after the clicks start against the end (goal: growth <= 5 MB)
  drift        round-trip latency, median of the first 10 clicks against the last 10 (<= 20 ms)
  gaps         the playout's under-runs and concealed audio, from Polyphone's own report;
               the only impairment is the one packet the benchmark drops on purpose
               (its loss phase), so anything beyond ~20 ms concealed is a gap
  latency      median and p95 round trip over the first minute, for reference

Only Polyphone is run by default: Chromium side by side would double the run's length
(the benchmark runs clients one after the other). `--clients polyphone,chromium` does it.

Run: .venv/bin/python tests/bench/soak.py [--minutes 30] [--clients polyphone] [--keep DIR]
Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audio_latency  # noqa: E402  (a sibling script, not a package)

GOALS = {"rss_growth_mb": 5.0, "latency_drift_ms": 20.0}


def figures(result: dict[str, Any]) -> dict[str, Any]:
    audio = (result.get("own_report") or {}).get("audio") or {}
    growth = result.get("growth") or {}
    rss = result.get("rss_growth") or {}
    out = {
        "client": result.get("client"),
        "rss": rss,
        "drift": growth,
        "gaps": {"playout_underruns": audio.get("playout_underruns"),
                 "concealed_ms": audio.get("concealed_ms"),
                 "capture_dropped_ms": audio.get("capture_dropped_ms")},
        "latency_first_minute_ms": result.get("latency_ms"),
        "cpu_percent_of_core": result.get("cpu_percent_of_core"),
        "loss_recovery": result.get("loss"),
    }
    if rss and growth:
        out["meets_goals"] = {
            "rss_growth": rss["growth_mb"] <= GOALS["rss_growth_mb"],
            "latency_drift": abs(growth["growth_ms"]) <= GOALS["latency_drift_ms"],
        }
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    bench = audio_latency.parse_args(["--seconds", "60", "--long-minutes", str(args.minutes),
                                      "--clients", args.clients]
                                     + (["--keep", args.keep] if args.keep else []))
    run = await audio_latency.main(bench)
    results = run["results"]
    return {"bench": "soak", "minutes": args.minutes, "goals": GOALS,
            "settings": run["settings"],
            "clients": [figures(r) for r in (results.values() if isinstance(results, dict) else results)]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the call (default 30)")
    ap.add_argument("--clients", default="polyphone", help="as in audio_latency.py (default polyphone)")
    ap.add_argument("--keep", metavar="DIR", help="keep recordings and logs in DIR")
    return ap.parse_args(argv)


if __name__ == "__main__":
    json.dump(asyncio.run(main(parse_args())), sys.stdout, indent=1)
    print()
