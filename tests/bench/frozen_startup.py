"""The frozen app's size and its start-up time to a shown window, beside running from source.

Run: .venv/bin/python tests/bench/frozen_startup.py [--runs 5] [--no-cold]
Builds dist/Polyphone first when it is out of date (build/package.sh --if-changed).
Prints one JSON object.

Each launch runs `polyphone --exit-when-shown` on a private Xvfb display (the xcb
platform, as on a desktop) and times it from just before the process is spawned to the
`polyphone: window shown` line (the main window's first paint). The frozen app
(dist/Polyphone/polyphone) and the source install (.venv/bin/polyphone) alternate.
"cold": the kernel's page cache is dropped before each launch (root only: writes
/proc/sys/vm/drop_caches), so every file is read from disk as after a reboot; "warm":
launched again straight away, files cached. Medians over --runs launches each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import xvfb  # noqa: E402

MARKER = "polyphone: window shown"
FROZEN = ROOT / "dist" / "Polyphone" / "polyphone"
SOURCE = ROOT / ".venv" / "bin" / "polyphone"


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def launch(exe: Path, env: dict[str, str], timeout: float = 60.0) -> float:
    """Milliseconds from spawning `exe --exit-when-shown` to its marker line."""
    t0 = time.monotonic()
    proc = subprocess.Popen([str(exe), "--exit-when-shown"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = t0 + timeout
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.strip() == MARKER:
                elapsed = (time.monotonic() - t0) * 1000
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{exe}: no window within {timeout} s")
        else:
            raise RuntimeError(f"{exe} exited ({proc.wait()}) without showing its window")
        proc.wait(30)
        return round(elapsed, 1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def bundle_facts(folder: Path) -> dict:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    total = sum(p.stat().st_size for p in files)
    internal = folder / "_internal"
    parts: dict[str, int] = {}
    for p in files:
        rel = p.relative_to(internal).parts if internal in p.parents else ("(top)",)
        key = rel[0] if len(rel) > 1 else "(libraries at the top of _internal)"
        parts[key] = parts.get(key, 0) + p.stat().st_size
    largest = sorted(parts.items(), key=lambda kv: -kv[1])[:8]
    return {"path": str(folder.relative_to(ROOT)), "size_mb": round(total / 1e6, 1), "files": len(files),
            "largest_mb": {k: round(v / 1e6, 1) for k, v in largest}}


def summary(runs: list[float]) -> dict:
    return {"median_ms": round(statistics.median(runs), 1), "min_ms": min(runs), "max_ms": max(runs),
            "runs_ms": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-cold", action="store_true", help="don't drop the page cache (warm only)")
    args = parser.parse_args()
    built = subprocess.run([str(ROOT / "build" / "package.sh"), "--if-changed"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=sys.stderr)
    if built.returncode != 0:
        return built.returncode
    why = xvfb.available()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    cold = not args.no_cold and drop_caches()
    display = xvfb.start()
    times: dict[str, dict[str, list[float]]] = {"frozen": {"cold": [], "warm": []},
                                                "source": {"cold": [], "warm": []}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, DISPLAY=display.display, POLYPHONE_CONFIG_DIR=f"{tmp}/config",
                       POLYPHONE_DATA_DIR=f"{tmp}/data", DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp}/no-bus")
            for var in ("QT_QPA_PLATFORM", "PULSE_SERVER", "POLYPHONE_TOKEN"):
                env.pop(var, None)
            launch(SOURCE, env)  # first launch writes the profiles: not measured
            for i in range(args.runs):
                for name, exe in (("frozen", FROZEN), ("source", SOURCE)):
                    if cold:
                        drop_caches()
                        times[name]["cold"].append(launch(exe, env))
                    times[name]["warm"].append(launch(exe, env))
                    print(f"run {i + 1}: {name} cold {times[name]['cold'][-1:] or '-'} "
                          f"warm {times[name]['warm'][-1]} ms", file=sys.stderr)
    finally:
        display.stop()
    result = {
        "bundle": bundle_facts(FROZEN.parent),
        "startup_to_window": {name: {kind: summary(runs) for kind, runs in kinds.items() if runs}
                              for name, kinds in times.items()},
        "settings": {"runs": args.runs, "cold": cold, "display": "Xvfb (xcb platform)",
                     "cpus": os.cpu_count(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
    }
    if not cold:
        result["settings"]["cold_note"] = "page cache not dropped (not root, or --no-cold): warm only"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
