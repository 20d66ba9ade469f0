"""Fuzzing for longer than the suite does: the protocol parser and the local gateway.

1. parser  `protocol.parse` on arbitrary bytes must return a message or raise
           ProtocolError, never anything else. With atheris installed (`pip install
           polyphone[fuzz]`), coverage-guided (libFuzzer) in a child process for
           --seconds; without it, random mutations of valid frames for as long.
2. gateway the real local gateway on loopback gets --seconds of garbage frames
           (random bytes, text, JSON, mutated valid frames) over one websocket after
           another; every frame must get exactly one reply (an error, or an answer),
           and afterwards a valid offer must still be answered.
The suite runs the same properties with hypothesis for a bounded number of examples
(tests/unit/test_protocol.py, tests/integration/test_localgw.py).

Run: .venv/bin/python tests/bench/fuzz.py [--seconds 300] [--seed 1]
Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
TOKEN = "fuzz-bench-token-93d1"
VALID = [
    {"type": "offer", "sessionId": "", "authToken": TOKEN, "mode": "echo",
     "data": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}},
    {"type": "ice-candidate", "sessionId": "x",
     "data": {"candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 5 typ host", "sdpMid": "0",
              "sdpMLineIndex": 0}},
    {"type": "close", "sessionId": "x"},
]

ATHERIS_TARGET = """
import sys, atheris
with atheris.instrument_imports():
    from polyphone import protocol
def one(data):
    try:
        protocol.parse(data)
    except protocol.ProtocolError:
        pass
atheris.Setup(sys.argv, one)
atheris.Fuzz()
"""


def log(text: str) -> None:
    print(f"[fuzz {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def mutate(rng: random.Random) -> str | bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
    if kind == 1:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(200)))
    frame = json.loads(json.dumps(rng.choice(VALID)))
    for _ in range(rng.randrange(1, 4)):
        target = frame if rng.random() < 0.5 or not isinstance(frame.get("data"), dict) else frame["data"]
        key = rng.choice(list(target) + ["type", "sdp", "zz"])
        target[key] = rng.choice([None, 0, -1, 2 ** 70, "", "x" * rng.randrange(2000), [], {}, True,
                                  "\u0000", "candidate:", "offer"])
    text = json.dumps(frame)
    if kind == 4 and text:
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(["", "}", "\"", "\\"]) + text[cut + 1:]
    return text


def fuzz_parser(seconds: float, seed: int) -> dict[str, Any]:
    try:
        import atheris  # noqa: F401
    except ImportError:
        from polyphone import protocol
        rng, n, t0 = random.Random(seed), 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            try:
                protocol.parse(mutate(rng))
            except protocol.ProtocolError:
                pass
            n += 1
        return {"engine": "random mutations (atheris not installed)", "inputs": n,
                "per_s": round(n / seconds), "crashes": 0}
    with tempfile.TemporaryDirectory(prefix="polyphone-fuzz-") as corpus:
        for i, frame in enumerate(VALID):   # seeds: one valid frame of each kind
            Path(corpus, f"seed-{i}.json").write_text(json.dumps(frame))
        out = subprocess.run([sys.executable, "-c", ATHERIS_TARGET, f"-max_total_time={int(seconds)}",
                              f"-seed={seed}", "-print_final_stats=1", corpus],
                             capture_output=True, text=True, timeout=seconds + 120, cwd=ROOT)
    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", out.stderr, re.MULTILINE))
    runs = int(stats.get("number_of_executed_units", "0"))
    return {"engine": "atheris (libFuzzer, coverage-guided)", "inputs": runs,
            "per_s": round(runs / seconds), "crashes": 0 if out.returncode == 0 else 1,
            "coverage_units_found": int(stats.get("new_units_added", "0")),
            "exit_code": out.returncode, "tail": out.stderr.strip().splitlines()[-3:]}


async def fuzz_gateway(seconds: float, seed: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from helpers.gateway_caller import make_offerer, recv_message
    from polyphone import protocol
    from polyphone.localgw import LocalGateway

    rng, frames, sockets, t0 = random.Random(seed), 0, 0, time.monotonic()
    async with LocalGateway(tokens=[TOKEN]) as gw:
        while time.monotonic() - t0 < seconds:
            async with connect(gw.url, max_size=None) as ws:
                sockets += 1
                for _ in range(50):
                    frame = mutate(rng)
                    try:
                        await ws.send(frame)
                        reply = await recv_message(ws, 5)
                    except Exception as exc:  # the server closing on an oversized frame is fine
                        if "1009" in str(exc) or "message too big" in str(exc).lower():
                            break
                        raise
                    assert isinstance(reply, (protocol.Error, protocol.Answer)), reply
                    frames += 1
        caller = await make_offerer()
        async with connect(gw.url) as ws:
            await ws.send(caller.offer(TOKEN, mode="echo"))
            alive = isinstance(await recv_message(ws, 10), protocol.Answer)
        await caller.close()
    return {"frames": frames, "sockets": sockets, "per_s": round(frames / seconds),
            "answers_a_valid_offer_after": alive}


def main(args: argparse.Namespace) -> dict[str, Any]:
    log(f"parser for {args.seconds:g} s")
    parser = fuzz_parser(args.seconds, args.seed)
    log(json.dumps(parser))
    log(f"gateway for {args.seconds:g} s")
    gateway = asyncio.run(fuzz_gateway(args.seconds, args.seed))
    log(json.dumps(gateway))
    return {"bench": "fuzz", "seconds_each": args.seconds, "seed": args.seed, "parser": parser,
            "gateway": gateway}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="per target (default 300)")
    ap.add_argument("--seed", type=int, default=1)
    json.dump(main(ap.parse_args()), sys.stdout, indent=1)
    print()
