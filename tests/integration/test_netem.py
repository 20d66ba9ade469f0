"""A bad network between two hosts: the gateway in one network namespace, Polyphone in another.

The media crosses a real veth between the namespaces; the signaling crosses it
through a forwarder (Polyphone allows ws:// only to loopback). Loss, delay and
jitter are the local gateway's `--impair` on its media sockets, both directions
(this kernel has no sch_netem for `tc netem`; see helpers/netns.py and
localgw/impair.py). A blackout takes the caller's link down in the kernel.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from helpers import netns
from polyphone.audio.analysis import best_lag_correlation, segment_correlation
from polyphone.paths import resource

TOKEN = "netem-token-4b1f93"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(netns.unavailable_reason() is not None,
                                 reason=str(netns.unavailable_reason()))]
SPEECH = resource("sounds/caller-demo.wav")


@pytest.fixture
def link():
    made = netns.Link()
    try:
        yield made
    finally:
        made.close()


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, POLYPHONE_CONFIG_DIR=str(tmp / "config"), POLYPHONE_DATA_DIR=str(tmp / "data"),
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", POLYPHONE_TOKEN=TOKEN)
    return env


async def _gateway(link: netns.Link, tmp: Path, *extra: str):
    proc = await asyncio.create_subprocess_exec(
        *link.argv(link.gateway_ns, sys.executable, "-m", "polyphone", "gateway",
                   "--host", link.gateway_ip, "--log-level", "warning", *extra),
        env=_env(tmp), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("listening ws://"), line
    url = line.split()[1]
    port, path = int(url.rsplit(":", 1)[1].split("/", 1)[0]), "/" + url.rsplit(":", 1)[1].split("/", 1)[1]
    return proc, port, path


class Caller:
    """`polyphone call` in the caller's namespace; stderr lines kept with their arrival times."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.out = b""

    async def start(self, link: netns.Link, url: str, tmp: Path, *args: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *link.argv(link.caller_ns, sys.executable, "-m", "polyphone", "call", "--url", url,
                       "--mode", "echo", "--no-ice-fetch", "--json", *args),
            env=_env(tmp), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append((time.monotonic(), line.decode().rstrip()))

    async def wait_line(self, text: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in self.lines:
                if text in line:
                    return at
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s; got: {[ln for _, ln in self.lines]}")

    async def finish(self, timeout: float) -> tuple[int, dict]:
        assert self.proc is not None and self.proc.stdout is not None
        self.out = await asyncio.wait_for(self.proc.stdout.read(), timeout)
        code = await asyncio.wait_for(self.proc.wait(), 10)
        await self._reader
        return code, json.loads(self.out.decode() or "{}")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def _stop(*procs: asyncio.subprocess.Process) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768


async def _echo_call(link: netns.Link, tmp: Path, impair: str | None) -> tuple[int, dict, float]:
    gw, port, path = await _gateway(link, tmp, *(["--impair", impair] if impair else []))
    fwd, local = await netns.start_forwarder(link, port)
    caller, rec = Caller(), tmp / f"heard-{'impaired' if impair else 'clean'}.wav"
    try:
        await caller.start(link, f"ws://127.0.0.1:{local}{path}", tmp, "--play", str(SPEECH),
                           "--record", str(rec), "--duration", "7")
        code, report = await caller.finish(60)
    finally:
        await caller.kill()
        await _stop(fwd, gw)
    sent, heard = _read(SPEECH), _read(rec)
    _, lag = best_lag_correlation(sent, heard, max_lag_s=2.0)
    return code, report, segment_correlation(sent, heard, lag)


async def test_lossy_slow_jittery_network_keeps_the_call_and_the_words(link, tmp_path) -> None:
    """5 % loss, 200 ms delay, 30 ms jitter, each way: the call stays up and the echo is recognisable."""
    clean_code, _, clean = await _echo_call(link, tmp_path, None)
    code, report, impaired = await _echo_call(link, tmp_path, "loss=5%,delay=200ms,jitter=30ms")
    print(json.dumps({"segment_correlation": {"clean": round(clean, 3), "impaired": round(impaired, 3)},
                      "impaired_rtt_ms": report.get("stats", {}).get("rtt_ms"),
                      "impaired_loss": report.get("stats", {}).get("packets_lost")}))
    assert clean_code == 0 and clean > 0.9
    assert code == 0 and report["result"] == "ended" and report["error"] is None, report
    # Each word of the echo still matches what was said; measured ~0.8 with the impairment.
    assert impaired > 0.6, impaired


async def _blackout_call(link: netns.Link, tmp: Path, outage_s: float, *args: str):
    gw, port, path = await _gateway(link, tmp)
    fwd, local = await netns.start_forwarder(link, port)
    caller = Caller()
    try:
        await caller.start(link, f"ws://127.0.0.1:{local}{path}", tmp, *args)
        await caller.wait_line("[call] CONNECTED", 30)
        await asyncio.sleep(2.0)
        down = time.monotonic()
        link.blackout()
        try:
            lost = await caller.wait_line("media lost", outage_s + 5) - down
            await asyncio.sleep(max(0.0, down + outage_s - time.monotonic()))
        finally:
            link.restore()
        up = time.monotonic()
        code, report = await caller.finish(60)
        return code, report, caller, lost, down, up
    finally:
        await caller.kill()
        await _stop(fwd, gw)


async def test_a_10_s_blackout_inside_the_grace_is_survived(link, tmp_path) -> None:
    code, report, caller, lost, _, up = await _blackout_call(link, tmp_path, 10.0, "--duration", "20")
    back = await caller.wait_line("media back", 1) - up
    print(json.dumps({"blackout_s": 10, "media_lost_after_s": round(lost, 2),
                      "audio_back_after_network_s": round(back, 2)}))
    assert lost < 3.0, f"'media lost' came {lost:.1f} s after the blackout began"
    assert back < 5.0
    assert code == 0 and report["result"] == "ended" and report["error"] is None, report


async def test_a_blackout_past_the_grace_fails_clearly(link, tmp_path) -> None:
    code, report, caller, lost, down, _ = await _blackout_call(
        link, tmp_path, 8.0, "--duration", "30", "--media-lost", "5")
    failed = next(at for at, line in caller.lines if "[call] FAILED" in line) - down
    print(json.dumps({"grace_s": 5, "media_lost_after_s": round(lost, 2),
                      "failed_after_s": round(failed, 2)}))
    assert lost < 3.0
    assert code == 5 and report["error"]["kind"] == "timeout", report
    assert "did not return within 5 s" in report["error"]["message"]
    assert "call again" in report["error"]["action"].lower()
    assert failed < 5.0 + 3.0  # the grace, then a teardown that cannot reach the gateway
