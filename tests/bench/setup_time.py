"""Call setup time: Polyphone's engine beside a minimal aiortc + websockets client.

Both call the same local gateway (echo agent) on loopback, interleaved, in
one process, N calls each. Phases are measured from the start of the call:
ws_open -> answer -> ice_connected -> first_audio. Then both again with an
unreachable STUN server configured (a loopback UDP port that never answers).

Run: .venv/bin/python tests/bench/setup_time.py [--calls 20] [--stun-calls 3]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import sys
import time

import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from polyphone.audio.files import MemorySink, ToneSource
from polyphone.engine.call import Call
from polyphone.engine.ice import IceServer
from polyphone.engine.request import CallRequest
from polyphone.localgw.server import LocalGateway

TOKEN = "bench-token"
PHASES = ("ws_open", "answer", "ice_connected", "first_audio")


async def polyphone_call(url: str, stun: str | None) -> dict[str, float | None]:
    servers = (IceServer((stun,)),) if stun else ()
    request = CallRequest(url=url, token=TOKEN, mode="echo", ice_servers=servers,
                          fetch_ice_servers=True)
    sink = MemorySink()
    call = Call(request, ToneSource(), sink)
    task = asyncio.ensure_future(call.run())
    deadline = time.monotonic() + 15
    while call.result.timings_ms["first_audio"] is None and not task.done():
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.002)
    await call.hangup()
    await task
    return dict(call.result.timings_ms)


async def minimal_call(url: str, stun: str | None) -> dict[str, float | None]:
    """The least a client must do: socket, offer, answer, ICE, first decoded frame."""
    t0 = time.monotonic()
    ms = lambda: round((time.monotonic() - t0) * 1000, 1)  # noqa: E731
    out: dict[str, float | None] = dict.fromkeys(PHASES)
    ws = await websockets.connect(url)
    out["ws_open"] = ms()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(stun)] if stun else []))
    connected, first = asyncio.Event(), asyncio.Event()

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState == "connected":
            out["ice_connected"] = ms()
            connected.set()

    @pc.on("track")
    def _track(track) -> None:
        async def read() -> None:
            with contextlib.suppress(MediaStreamError):
                await track.recv()
                out["first_audio"] = ms()
                first.set()
                while True:
                    await track.recv()
        asyncio.ensure_future(read())

    pc.addTrack(ToneSource())
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send(json.dumps({"type": "offer", "sessionId": "", "authToken": TOKEN,
                              "mode": "echo", "data": {"type": "offer",
                                                       "sdp": pc.localDescription.sdp}}))
    session = ""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg["type"] == "answer":
            session = msg["sessionId"]
            out["answer"] = ms()
            await pc.setRemoteDescription(RTCSessionDescription(msg["data"]["sdp"], "answer"))
            break
    try:
        await asyncio.wait_for(first.wait(), 15)
    except asyncio.TimeoutError:
        pass
    await ws.send(json.dumps({"type": "close", "sessionId": session}))
    await pc.close()
    await ws.close()
    return out


def summarize(rows: list[dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    out = {}
    for phase in PHASES:
        values = sorted(v for r in rows if (v := r.get(phase)) is not None)
        if not values:
            out[phase] = {"median": None, "p95": None, "n": 0}
            continue
        p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
        out[phase] = {"median": round(statistics.median(values), 1), "p95": p95, "n": len(values)}
    return out


def blackhole_stun() -> tuple[socket.socket, str]:
    """A loopback UDP port that swallows STUN requests: an unreachable STUN server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"stun:127.0.0.1:{sock.getsockname()[1]}"


async def main(calls: int, stun_calls: int) -> dict:
    async with LocalGateway(tokens=[TOKEN], agent="echo") as gw:
        url = gw.url
        await polyphone_call(url, None)  # warm-up (imports, codecs), not counted
        await minimal_call(url, None)
        poly, mini = [], []
        for _ in range(calls):
            poly.append(await polyphone_call(url, None))
            mini.append(await minimal_call(url, None))
        sock, stun = blackhole_stun()
        try:
            poly_stun = [await polyphone_call(url, stun) for _ in range(stun_calls)]
            mini_stun = [await minimal_call(url, stun) for _ in range(stun_calls)]
        finally:
            sock.close()
    p, m = summarize(poly), summarize(mini)
    ratio = None
    if p["first_audio"]["median"] and m["first_audio"]["median"]:
        ratio = round(p["first_audio"]["median"] / m["first_audio"]["median"], 3)
    ps, ms_ = summarize(poly_stun), summarize(mini_stun)
    return {
        "bench": "setup_time",
        "calls": calls,
        "polyphone_ms": p,
        "minimal_client_ms": m,
        "ratio_first_audio_median": ratio,
        "goal": {"ratio_max": 1.1, "p95_first_audio_ms_max": 150,
                 "unreachable_stun_setup_ms_max": 1000},
        "unreachable_stun": {"calls": stun_calls,
                             "polyphone_ms": {k: ps[k] for k in ("ice_connected", "first_audio")},
                             "minimal_client_ms": {k: ms_[k] for k in ("ice_connected",
                                                                       "first_audio")}},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--stun-calls", type=int, default=3)
    a = ap.parse_args()
    result = asyncio.run(main(a.calls, a.stun_calls))
    json.dump(result, sys.stdout, indent=2)
    print()
