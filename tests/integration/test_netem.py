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
from helpers.processes import stop_process_async
from helpers.waits import until
from polyphone.audio.analysis import best_lag_correlation, segment_correlation
from polyphone.paths import resource

TOKEN = "netem-token-4b1f93"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(netns.unavailable_reason() is not None,
                                 reason=str(netns.unavailable_reason()))]
SPEECH = resource("sounds/caller-demo.wav")
RATE = 48_000
STATS = ("rtt_ms", "packets_lost", "packets_received", "fraction_lost", "jitter_ms")


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
        at, _ = await until(lambda: next(((at, ln) for at, ln in self.lines if text in ln), None),
                            timeout, 0.05, lambda: f"{text!r}; got: {[ln for _, ln in self.lines]}")
        return at

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
        await stop_process_async(proc, 10)


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
    return code, report, _echo_correlation(_read(SPEECH), _read(rec))


def _echo_correlation(sent: np.ndarray, heard: np.ndarray, max_lag_s: float = 2.0) -> float:
    """How well each word of the echo matches what was said (`segment_correlation`), with the
    recording either behind the speech or ahead of it.

    Behind is the usual case (the codec's ~13 ms). Ahead happens in about one impaired call in
    ten: the caller is the DTLS server and starts sending as soon as it has the gateway's last
    handshake flight; when its own reply to that is lost (5 %), the gateway retransmits after
    its 1 s DTLS timer and drops the caller's SRTP until then. The echo (and the recording)
    then begins ~1 s into the speech. `best_lag_correlation` only searches lags >= 0, so it
    found a chance peak and every word scored ~0.09; searching the other way too finds the
    shift, and the words that were echoed still score ~0.8.
    """
    _, behind = best_lag_correlation(sent, heard, max_lag_s)  # heard[t + behind] ~ sent[t]
    _, ahead = best_lag_correlation(heard, sent, max_lag_s)   # heard[t] ~ sent[t + ahead]
    skip = int(round(ahead * RATE))
    return max(segment_correlation(sent, heard, behind), segment_correlation(sent[skip:], heard, 0.0))


async def test_lossy_slow_jittery_network_keeps_the_call_and_the_words(link, tmp_path) -> None:
    """5 % loss, 200 ms delay, 30 ms jitter, each way: the call stays up and the echo is recognisable."""
    clean_code, clean_report, clean = await _echo_call(link, tmp_path, None)
    code, report, impaired = await _echo_call(link, tmp_path, "loss=5%,delay=200ms,jitter=30ms")
    figures = {name: {k: (r.get("stats") or {}).get(k) for k in STATS}
               for name, r in (("clean", clean_report), ("impaired", report))}
    print(json.dumps({"segment_correlation": {"clean": round(clean, 3), "impaired": round(impaired, 3)},
                      **figures}))
    assert clean_code == 0 and clean > 0.9
    assert code == 0 and report["result"] == "ended" and report["error"] is None, report
    # Each word of the echo still matches what was said; measured ~0.8 with the impairment.
    assert impaired > 0.6, impaired
    # The impairment took effect, as the call's own statistics (its last StatsSample) see it.
    # 200 ms each way adds ~400 ms to the RTCP round trip (measured 370-510 ms, clean 2-5 ms).
    before, after = figures["clean"], figures["impaired"]
    assert before["rtt_ms"] is not None and after["rtt_ms"] is not None, figures
    assert after["rtt_ms"] >= before["rtt_ms"] + 150, figures
    # 5 % of the gateway's ~280 packets lost: measured 6-21 lost (clean: none). Over 1 % (3
    # packets) is > 3 sigma below the expected ~14. (fraction_lost is RTCP's per-report
    # 8-bit figure for the other direction: too coarse to use.)
    lost, received = after["packets_lost"], after["packets_received"]
    assert lost > before["packets_lost"] and lost / (lost + received) > 0.01, figures


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
