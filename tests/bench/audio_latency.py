"""Audio benchmark: Polyphone beside headless Chromium, through the same virtual devices.

One private PulseAudio server (tests/helpers/sound_server.py: sink `micsink`
whose monitor is the virtual microphone `vmic`, sink `spk` the virtual
speaker) and one local gateway (echo agent, in this process). Each client in
turn makes one call through them; the same click train goes into `micsink`
and both monitors are recorded, so a click's round trip is

    micsink -> vmic -> client -> WebRTC -> gateway echo -> client -> spk -> spk.monitor

measured on one clock (this process's monotonic clock). Clients:
  polyphone      `polyphone call --mode echo --input default --output default
                 --no-processing` in a subprocess (like Chromium's page, audio
                 processing off)
  polyphone-ap   the same with echo cancellation/noise suppression/AGC on (the app's default)
  polyphone-asr  `polyphone` with live captions on (--captions: both sides segmented on every
                 frame, the recogniser in its own process); tests/bench/captions.py loads it
                 with speech
  chromium       headless Chromium (libwebrtc) on tests/bench/chromium_page, getUserMedia
                 with echoCancellation/noiseSuppression/autoGainControl off
  chromium-ap    the same with them on
  stock-aiortc   Polyphone with aiortc's own receive jitter buffer left in (the reference
                 for what audio/jitter.py fixes)

One call per client, in phases (click = a 10 ms chirp at -6 dBFS):
  steady  a click every --interval s for max(--seconds, --long-minutes) of call:
          round-trip latency (median, p95 over the first --seconds) and its growth
          (median of the last 10 clicks minus the first 10);
  tail    one click, then 2 s in which the gateway sends nothing (its sender pauses
          right after the click's echo, RTP timestamps jump like a DTX sender's;
          the microphone is silent too), then clicks again: how late the tail
          click is heard compared with when it was due (baseline latency);
  loss    a click every 0.5 s; one RTP packet from the gateway is dropped 3 s in
          (Faults.drop_packet_after): how long until latency is back within
          +20 ms of the latency just before the drop, and the worst excess.
CPU (% of one core) and memory are sampled from /proc over the clicks: the
Polyphone process, or all of Chromium's processes (RSS summed, and PSS, which
counts shared pages once).

Run: .venv/bin/python tests/bench/audio_latency.py [--seconds 60] [--long-minutes 1]
        [--clients polyphone,chromium] [--keep DIR]
Full lengths: --seconds 60 --long-minutes 10. Prints one JSON object on stdout
(progress and a table on stderr). See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT / "tests"), str(ROOT / "app")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from aiortc.mediastreams import MediaStreamTrack  # noqa: E402
from aiortc.rtp import is_rtcp  # noqa: E402

from helpers import chromium, sound_server  # noqa: E402
from helpers.processes import stop_process  # noqa: E402
from helpers.waits import until  # noqa: E402
from polyphone.audio.analysis import click_times  # noqa: E402
from polyphone.localgw import Faults, LocalGateway  # noqa: E402

RATE = 48_000
TOKEN = "bench-token"
RAW = ["--format=s16le", f"--rate={RATE}", "--channels=1", "--raw"]
CLIENTS = ("polyphone", "polyphone-ap", "polyphone-asr", "chromium", "chromium-ap", "stock-aiortc")

WARM_AFTER_ANSWER = 3.5   # clicks start this long after the answer (and >= 3 s after connected)
LEAD_S = 1.0              # silence at the head of the click train
TAIL_PAUSE_S = 2.0        # the gateway's sender pauses this long after the tail click
TAIL_QUIET_S = 3.0        # the microphone is silent this long after the tail click
LOSS_LEAD_S = 3.0         # loss phase: clicks this long before the drop ...
LOSS_AFTER_S = 8.0        # ... and this long after
LOSS_INTERVAL_S = 0.5
RECOVERY_TOLERANCE_MS = 20.0
CLICK_DBFS = -6.0
CONNECT_TIMEOUT = 30.0

GOALS = {
    "latency_median_ms": "<= 150 and <= Chromium's",
    "latency_p95_ms": "<= 150 and <= Chromium's",
    "loss_recovery_s": "<= 2",
    "tail_late_ms": "<= 100",
    "growth_ms": "<= 20 over 10 min",
    "cpu_percent_of_core": "<= 10",
    "rss_mb": "<= 150",
}


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the click train --------------------------------------------------------------------


def chirp_burst(ms: float = 10.0, f0: float = 1500.0, f1: float = 6000.0,
                dbfs: float = CLICK_DBFS) -> np.ndarray:
    n = int(RATE * ms / 1000)
    t = np.arange(n) / RATE
    dur = n / RATE
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))
    x = np.sin(phase) * np.hanning(n) * (10 ** (dbfs / 20) * 32767)
    return x.astype(np.int16)


# Clicks alternate between an up-chirp and a down-chirp, so a click is paired only with
# an echo of its own kind: unambiguous up to twice the spacing of the clicks.
BURSTS = (chirp_burst(f0=1500.0, f1=6000.0), chirp_burst(f0=6000.0, f1=1500.0))


def burst_kind(samples: np.ndarray, onset: int) -> int:
    """Which of BURSTS starts near `onset` (index into `samples`): 0 or 1."""
    seg = samples[max(0, onset - 480):onset + 960].astype(np.float64)
    scores = []
    for burst in BURSTS:
        b = burst.astype(np.float64)
        if len(seg) < len(b):
            scores.append(0.0)
            continue
        xc = np.correlate(seg, b, mode="valid")
        scores.append(float(np.abs(xc).max()) / (np.linalg.norm(b) + 1e-9))
    return int(np.argmax(scores))


@dataclass
class Schedule:
    """Click times (s from the start of the train) with their phase."""

    clicks: list[tuple[float, str]]
    length: float
    tail_at: float
    loss_at: float      # when the packet should be dropped
    steady_window: float  # the first this-many seconds of the steady phase give the latency figures

    def pcm(self) -> np.ndarray:
        out = np.zeros(int(self.length * RATE), np.int16)
        for k, (t, _) in enumerate(self.clicks):
            burst = BURSTS[k % 2]
            i = int(round(t * RATE))
            out[i:i + len(burst)] = burst[:len(out) - i]
        return out


def make_schedule(seconds: float, long_minutes: float, interval: float) -> Schedule:
    clicks: list[tuple[float, str]] = []
    t = LEAD_S
    steady_end = LEAD_S + max(seconds, long_minutes * 60.0)
    while t < steady_end - 1e-9:
        clicks.append((t, "steady"))
        t += interval
    tail_at = t
    clicks.append((tail_at, "tail"))
    t = tail_at + TAIL_QUIET_S
    for _ in range(3):
        clicks.append((t, "after-pause"))
        t += 1.0
    loss_start = t
    loss_at = loss_start + LOSS_LEAD_S - LOSS_INTERVAL_S / 2  # between two clicks
    while t < loss_start + LOSS_LEAD_S + LOSS_AFTER_S - 1e-9:
        clicks.append((t, "loss"))
        t += LOSS_INTERVAL_S
    return Schedule(clicks, t + 1.0, tail_at, loss_at, seconds)


# --- timed recordings of the monitors --------------------------------------------------------


class TimedRecorder:
    """`parec --latency-msec=10` of one source, noting when each chunk arrived.

    A sample's time is estimated from the chunks around it: a chunk cannot
    arrive before its last sample was rendered, so min(arrival - samples so far /
    rate) over nearby chunks is the stream's time origin (plus a delivery delay
    common to both monitors, which cancels in a round trip).
    """

    def __init__(self, env: dict[str, str], source: str) -> None:
        self.source = source
        self._proc = subprocess.Popen(["parec", f"--device={source}", "--latency-msec=10", *RAW],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL)
        self._data = bytearray()
        self._arrivals: list[tuple[float, int]] = []   # (monotonic time, samples so far)
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"parec {source}")
        self._thread.start()

    def _read(self) -> None:
        fd = self._proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            try:
                chunk = os.read(fd, 4800)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            self._data += chunk
            self._arrivals.append((now, len(self._data) // 2))

    def stop(self) -> None:
        stop_process(self._proc, 5)
        self._thread.join(5)

    @property
    def arrivals(self) -> list[tuple[float, int]]:
        return list(self._arrivals)

    @property
    def samples(self) -> np.ndarray:
        n = len(self._data) // 2 * 2
        return np.frombuffer(bytes(self._data[:n]), dtype=np.int16)

    def times_of(self, indices: list[float], window_s: float = 10.0) -> list[float]:
        """Monotonic times of sample indices (fractions allowed)."""
        if not self._arrivals:
            return []
        arr = np.array(self._arrivals, dtype=np.float64)
        origin = arr[:, 0] - arr[:, 1] / RATE
        pos = arr[:, 1]
        out = []
        for idx in indices:
            near = np.abs(pos - idx) <= window_s * RATE
            o = float(origin[near].min()) if near.any() else float(origin.min())
            out.append(o + idx / RATE)
        return out

    def clicks(self) -> tuple[list[float], list[int]]:
        """Click onsets: their times on the monotonic clock, and their kinds (BURSTS)."""
        samples = self.samples
        onsets = [int(round(t * RATE)) for t in click_times(samples, RATE)]
        return self.times_of(onsets), [burst_kind(samples, i) for i in onsets]


class MicFeeder:
    """`pacat --latency-msec=10` into `micsink` for the whole call: silence, then `play(pcm)`.

    The stream is opened before the client opens its microphone: a new stream on a
    null sink can stall the sink's monitor for a moment, which would reach the client as
    a burst of late audio (and raise both clients' jitter buffers) if it happened mid-call.
    A thread writes 10 ms chunks, keeping ~100 ms ahead of the wall clock.
    """

    CHUNK = RATE // 100
    AHEAD_S = 0.1

    def __init__(self, env: dict[str, str], sink: str = "micsink") -> None:
        self._proc = subprocess.Popen(
            ["pacat", "--playback", f"--device={sink}", "--latency-msec=10", *RAW], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._pending: np.ndarray | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.started_train_at: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="pacat feeder")
        self._thread.start()

    def play(self, pcm: np.ndarray) -> None:
        with self._lock:
            self._pending = np.ascontiguousarray(pcm, dtype=np.int16)

    def _run(self) -> None:
        t0 = time.monotonic()
        written = 0
        silence = np.zeros(self.CHUNK, np.int16)
        train, pos = None, 0
        while not self._stop.is_set():
            ahead = written / RATE - (time.monotonic() - t0)
            if ahead > self.AHEAD_S:
                time.sleep(min(0.01, ahead - self.AHEAD_S))
                continue
            if train is None:
                with self._lock:
                    train, self._pending = self._pending, None
                if train is not None:
                    self.started_train_at = time.monotonic() + max(0.0, ahead)
            if train is not None and pos < len(train):
                chunk = train[pos:pos + self.CHUNK]
                pos += len(chunk)
            else:
                chunk = silence
            try:
                self._proc.stdin.write(chunk.tobytes())  # type: ignore[union-attr]
                self._proc.stdin.flush()  # type: ignore[union-attr]
            except (BrokenPipeError, OSError, ValueError):
                return
            written += len(chunk)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(Exception):
            self._proc.stdin.close()  # type: ignore[union-attr]
        stop_process(self._proc, 5)


# --- CPU and memory from /proc --------------------------------------------------------------


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("latin-1")
    except OSError:
        return None


def _kb(text: str | None, key: str) -> int:
    if not text:
        return 0
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


class ProcSampler:
    """Samples CPU ticks and RSS/PSS of a set of processes (a callable giving pids) every 0.5 s."""

    def __init__(self, pids: Callable[[], list[int]], every: float = 0.5) -> None:
        self._pids = pids
        self._every = every
        self._last: dict[int, int] = {}
        self.samples: list[tuple[float, float, float, float, int]] = []  # t, cpu s, rss MB, pss MB, n
        self._cpu = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proc sampler")
        self._thread.start()

    def _sample(self) -> None:
        rss = pss = 0
        pids = self._pids()
        for pid in pids:
            stat = _read(f"/proc/{pid}/stat")
            if stat is None:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            ticks = int(fields[11]) + int(fields[12])   # utime + stime
            self._cpu += max(0, ticks - self._last.get(pid, ticks))
            self._last[pid] = ticks
            rss += _kb(_read(f"/proc/{pid}/status"), "VmRSS:")
            pss += _kb(_read(f"/proc/{pid}/smaps_rollup"), "Pss:")
        self.samples.append((time.monotonic(), self._cpu / CLK_TCK, rss / 1024, pss / 1024, len(pids)))

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            with contextlib.suppress(Exception):
                self._sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return {"cpu_percent_of_core": None, "rss_mb": None, "pss_mb": None}
        a, b = inside[0], inside[-1]
        return {
            "cpu_percent_of_core": round(100 * (b[1] - a[1]) / (b[0] - a[0]), 1),
            "rss_mb": round(max(s[2] for s in inside), 1),
            "pss_mb": round(max(s[3] for s in inside), 1),
            "processes": max(s[4] for s in inside),
        }


# --- the gateway's sender pauses after the tail click ------------------------------------------


class TailPause:
    """Makes the gateway's sender pause right after the tail click's echo has gone out.

    `style="dtx"` (default): after the click, no RTP packet leaves for `pause_s`;
    then the packets go on with their sequence numbers continuing and their RTP
    timestamps `pause_s` later: on the wire, a sender in DTX (silence suppressed).
    It wraps the sender's track (public `replaceTrack`) only to see the click,
    and the DTLS transport's `_send_rtp` (as Faults.drop_packet_after does) to
    hold the packets and renumber the ones after.

    `style="encoder-hold"`: the track itself stops giving frames for `pause_s`.
    aiortc's Opus encoder returns each packet one frame late, so the frame after
    the click waits in the gateway's encoder and leaves 2 s late with its old
    timestamp: one very late packet, then a timestamp jump. Not what a DTX sender
    does; kept because a receiver should survive a late packet too.
    """

    def __init__(self, sender, pause_s: float = TAIL_PAUSE_S, style: str = "dtx",
                 threshold: int = int(32768 * 10 ** (-30 / 20))) -> None:
        self.pause_s = pause_s
        self.style = style
        self.threshold = threshold
        self.state = "idle"      # idle -> armed -> click -> pausing -> done
        self.frames_since_click = 0
        self.click_seen_at: float | None = None
        self.paused_at: float | None = None
        self.resumed_at: float | None = None
        self.packets_held = 0
        self.loud_frames: list[float] = []   # when a click's echo reached the sender (uplink/downlink split)
        self._skipped_samples = 0
        self._ssrc = getattr(sender, "_ssrc", None)
        self.track = _ClickWatch(sender.track, self)
        sender.replaceTrack(self.track)
        if style == "dtx":
            transport = sender.transport
            self._send = transport._send_rtp
            transport._send_rtp = self._send_rtp

    def arm(self) -> None:
        if self.state == "idle":
            self.state = "armed"

    def on_frame(self, frame) -> bool:
        """Called for each frame the sender takes; False: drop it (encoder-hold style)."""
        now = time.monotonic()
        loud = int(np.abs(frame.to_ndarray().astype(np.int32)).max()) >= self.threshold
        if loud and (not self.loud_frames or now - self.loud_frames[-1] > 0.1):
            self.loud_frames.append(now)
        if self.state == "armed" and loud:
            self.state, self.click_seen_at, self.frames_since_click = "click", now, 0
        if self.state == "click":
            self.frames_since_click += 1
            # The encoder sends frame k's packet while encoding frame k+1: when the 4th frame
            # from the click is taken, the click's packet and the next one are out.
            if self.frames_since_click >= 4:
                self.state, self.paused_at = "pausing", now
        if self.state == "pausing" and self.style == "encoder-hold":
            self._skipped_samples += frame.samples
            if self._skipped_samples >= self.pause_s * RATE:
                self.state, self.resumed_at = "done", now
            return False
        return True

    async def _send_rtp(self, data: bytes) -> None:
        if len(data) >= 12 and not is_rtcp(data) and (
                self._ssrc is None or int.from_bytes(data[8:12], "big") == self._ssrc):
            if self.state == "pausing":
                if time.monotonic() - self.paused_at < self.pause_s:  # type: ignore[operator]
                    self.packets_held += 1
                    return
                self.state, self.resumed_at = "done", time.monotonic()
            if self.packets_held:
                seq = (int.from_bytes(data[2:4], "big") - self.packets_held) & 0xFFFF
                data = data[:2] + seq.to_bytes(2, "big") + data[4:]
        await self._send(data)


class _ClickWatch(MediaStreamTrack):
    kind = "audio"

    def __init__(self, inner: MediaStreamTrack, pause: TailPause) -> None:
        super().__init__()
        self.inner = inner
        self.pause = pause

    async def recv(self):
        while True:
            frame = await self.inner.recv()
            if self.pause.on_frame(frame):
                return frame

    def stop(self) -> None:
        super().stop()
        self.inner.stop()


# --- clients -------------------------------------------------------------------------------


@dataclass
class ClientRun:
    name: str
    pids: Callable[[], list[int]]
    stop: Callable[[], Any]           # async: ends the call, returns the client's own report
    connected: Callable[[], bool] = lambda: True
    report: dict[str, Any] = field(default_factory=dict)


STOCK_JITTER = ("import sys, polyphone.audio.jitter as j; j.install = lambda receiver: None; "
                "from polyphone.__main__ import main; sys.exit(main(sys.argv[1:]))")


async def start_polyphone(name: str, url: str, env: dict[str, str], work: Path,
                          max_seconds: float) -> ClientRun:
    processing = name == "polyphone-ap"
    stock = name == "stock-aiortc"
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    penv = dict(env, POLYPHONE_TOKEN=TOKEN, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                XDG_DATA_HOME=str(home / ".local/share"), XDG_CACHE_HOME=str(home / ".cache"),
                PYTHONUNBUFFERED="1")
    args = ["call", "--url", url, "--mode", "echo", "--input", "default", "--output", "default",
            "--duration", f"{max_seconds:.0f}", "--json", "-v"]
    if not processing:
        args.append("--no-processing")
    if name == "polyphone-asr":
        args.append("--captions")
    cmd = [sys.executable, "-c", STOCK_JITTER, *args] if stock else \
        [sys.executable, "-m", "polyphone", *args]
    out = open(work / "stdout.json", "wb")
    err = open(work / "stderr.log", "wb")
    proc = subprocess.Popen(cmd, env=penv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    async def stop() -> dict[str, Any]:
        await asyncio.to_thread(stop_process, proc, 15)  # on SIGTERM the CLI hangs up, prints its JSON
        out.close()
        err.close()
        text = (work / "stdout.json").read_text(errors="replace").strip()
        try:
            result = json.loads(text.splitlines()[-1]) if text else {}
        except json.JSONDecodeError:
            result = {"unparsed": text[-500:]}
        return {"exit_code": proc.returncode, "audio": result.get("audio"),
                "rtp": result.get("stats"), "result": result.get("result")}

    return ClientRun(name, lambda: [proc.pid] if proc.poll() is None else [], stop)


async def start_chromium(name: str, url: str, env: dict[str, str], work: Path,
                         pages: chromium.PageServer) -> ClientRun:
    processing = name == "chromium-ap"
    page_url = pages.url(url=url, token=TOKEN, mode="echo", ap="1" if processing else "0")
    browser = await chromium.launch(work, page_url, fake_media=False, pulse_env=env)
    page = await browser.page()
    phase = {"value": ""}

    async def poll() -> None:
        while True:
            with contextlib.suppress(Exception):
                phase["value"] = await page.evaluate("window.polyphoneTest && window.polyphoneTest.phase")
            await asyncio.sleep(0.2)

    poller = asyncio.ensure_future(poll())

    async def stop() -> dict[str, Any]:
        poller.cancel()
        report: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            stats = await page.evaluate("window.polyphoneTest.stats()")
            report["rtp"] = stats
            inbound = stats.get("inbound") or {}
            emitted = inbound.get("jitterBufferEmittedCount") or 0
            if emitted:
                report["jitter_buffer_avg_ms"] = round(1000 * inbound["jitterBufferDelay"] / emitted, 1)
                report["jitter_buffer_target_avg_ms"] = round(
                    1000 * inbound.get("jitterBufferTargetDelay", 0) / emitted, 1)
            state = await page.evaluate("window.polyphoneTest")
            report["phase"] = state.get("phase")
            report["error"] = state.get("error")
            await page.evaluate("window.polyphoneTest.hangup()")
        await asyncio.sleep(0.3)
        await browser.aclose()
        return report

    run = ClientRun(name, browser.pids, stop)
    run.report["chromium"] = browser.log_path.name
    return run


# --- one client's call -------------------------------------------------------------------------


async def wait_for_session(gateway: LocalGateway, known: set[str], timeout: float):
    """The first new session whose peer connected, or None after `timeout` s."""
    return await until(lambda: next((s for sid, s in gateway.sessions.items() if sid not in known
                                     and s.peer.connectionState == "connected"), None),
                       timeout, 0.02, error=None)


async def run_client(name: str, server, gateway: LocalGateway, schedule: Schedule, work: Path,
                     pages: chromium.PageServer, pause_style: str = "dtx") -> dict[str, Any]:
    env = dict(server.env)
    known = set(gateway.ended) | set(gateway.sessions)
    gateway.faults = Faults(drop_packet_after=WARM_AFTER_ANSWER + schedule.loss_at)
    mic = TimedRecorder(server.child_env(), "micsink.monitor")
    spk = TimedRecorder(server.child_env(), "spk.monitor")
    feeder = MicFeeder(server.child_env())
    await asyncio.sleep(2.5)   # the sinks render in small steps before the client opens streams
    work.mkdir(parents=True, exist_ok=True)
    t_launch = time.monotonic()
    max_call = WARM_AFTER_ANSWER + schedule.length + 30
    if name.startswith("chromium"):
        client = await start_chromium(name, gateway.url, env, work, pages)
    else:
        client = await start_polyphone(name, gateway.url, server.child_env(), work, max_call)
    sampler = ProcSampler(client.pids)
    result: dict[str, Any] = {"client": name}
    try:
        session = await wait_for_session(gateway, known, CONNECT_TIMEOUT)
        if session is None:
            raise RuntimeError(f"{name}: no connected session within {CONNECT_TIMEOUT:g} s")
        connected_at = time.monotonic()
        result["connect_s"] = round(connected_at - t_launch, 2)
        sender = next(s for s in session.peer.getSenders() if s.kind == "audio")
        pauser = TailPause(sender, style=pause_style)
        t_start = max(session.created_at + WARM_AFTER_ANSWER, connected_at + 3.0)
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        feeder.play(schedule.pcm())
        t_train = time.monotonic()
        log(f"{name}: connected in {result['connect_s']} s; clicks for {schedule.length:.0f} s")
        await asyncio.sleep(max(0.0, t_train + schedule.tail_at - 0.4 - time.monotonic()))
        pauser.arm()
        end = t_train + schedule.length + 1.0
        while time.monotonic() < end:
            await asyncio.sleep(min(5.0, end - time.monotonic()))
            if session.closed:
                break
        t_end = time.monotonic()
        if session.closed:
            raise RuntimeError(f"{name}: the call ended early ({session.close_reason})")
        result.update(sampler.window(t_train, t_end))
        result["rss_growth"] = rss_growth(sampler.samples, t_train + RSS_WARM_S, t_end)
        dropped = list(session.rtp_dropped)
        pause = (pauser.click_seen_at, pauser.paused_at, pauser.resumed_at, pauser.packets_held)
        at_gateway = list(pauser.loud_frames)
        gw_counters = session.counters()
    finally:
        sampler.stop()
        feeder.stop()
        with contextlib.suppress(Exception):
            client.report.update(await client.stop())
        mic.stop()
        spk.stop()
    result["own_report"] = client.report
    result["gateway"] = gw_counters
    result.update(analyse(schedule, mic, spk, dropped, pause, at_gateway))
    np.savez_compressed(work / "recordings.npz", mic=mic.samples, spk=spk.samples,
                        mic_arrivals=np.array(mic.arrivals), spk_arrivals=np.array(spk.arrivals))
    return result


# --- analysis ----------------------------------------------------------------------------------


RSS_WARM_S = 60.0  # RSS growth is counted from this long after the clicks start


def rss_growth(samples: list[tuple[float, float, float, float, int]], t0: float, t1: float
               ) -> dict[str, Any] | None:
    """RSS (MB) in the 10 s after `t0` against the last 10 s before `t1` (medians), or None
    when the call was too short to have both windows."""
    first = [s[2] for s in samples if t0 <= s[0] <= t0 + 10 and s[4]]
    last = [s[2] for s in samples if t1 - 10 <= s[0] <= t1 and s[4]]
    if t1 - t0 < 30 or not first or not last:
        return None
    a, b = statistics.median(first), statistics.median(last)
    return {"from_s_after_start": RSS_WARM_S, "over_s": round(t1 - t0, 1),
            "start_mb": round(a, 1), "end_mb": round(b, 1), "growth_mb": round(b - a, 1)}


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def r1(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def analyse(schedule: Schedule, mic: TimedRecorder, spk: TimedRecorder,
            dropped: list, pause: tuple, at_gateway: list[float] = ()) -> dict[str, Any]:
    mic_t, _ = mic.clicks()
    spk_t, spk_kind = spk.clicks()
    out: dict[str, Any] = {"clicks": {"scheduled": len(schedule.clicks), "in_mic": len(mic_t),
                                      "heard": len(spk_t)}}
    if not mic_t:
        out["error"] = "no click reached the virtual microphone"
        return out
    # Match mic onsets to the schedule in order, re-anchoring on each match: when pacat
    # under-runs (a loaded machine) the rest of the train slips, which moves no latency.
    offset = mic_t[0] - schedule.clicks[0][0]
    matched: list[tuple[float, str, float, int]] = []   # mic time, phase, schedule time, kind
    j = 0
    for m in mic_t:
        while j < len(schedule.clicks) and schedule.clicks[j][0] + offset < m - 0.2:
            j += 1
        if j < len(schedule.clicks) and abs(schedule.clicks[j][0] + offset - m) <= 0.2:
            offset = m - schedule.clicks[j][0]
            matched.append((m, schedule.clicks[j][1], schedule.clicks[j][0], j % 2))
            j += 1
    origin = mic_t[0] - schedule.clicks[0][0]
    out["clicks"]["matched"] = len(matched)
    out["clicks"]["train_slip_ms"] = r1(1000 * (offset - origin))
    # Each click's echo: the first click of its kind heard after it, before the next click
    # of the same kind was sent (at most 3 s).
    rows = []   # (mic time, phase, latency s or None, speaker time)
    in_window = [sched_t < LEAD_S + schedule.steady_window for _, _, sched_t, _ in matched]
    for i, (m, phase, _, kind) in enumerate(matched):
        same = [t for t, _, _, k in matched[i + 1:] if k == kind]
        limit = min(same[0] if same else m + 3.0, m + 3.0)
        heard = [s for s, k in zip(spk_t, spk_kind) if k == kind and m < s < limit]
        rows.append((m, phase, (heard[0] - m) if heard else None, heard[0] if heard else None))
    out["clicks"]["paired"] = sum(1 for r in rows if r[2] is not None)

    steady = [(m, lat) for m, ph, lat, _ in rows if ph == "steady" and lat is not None]
    window = [r[2] for r, inside in zip(rows, in_window)
              if inside and r[1] == "steady" and r[2] is not None]
    out["steady_ms"] = [round(1000 * lat) for _, lat in steady]   # every steady click, in order
    if window:
        out["latency_ms"] = {"median": r1(1000 * statistics.median(window)),
                             "p95": r1(1000 * pct(window, 0.95)), "min": r1(1000 * min(window)),
                             "max": r1(1000 * max(window)), "n": len(window)}
    # Where the time goes: mic -> the gateway's sender (capture, encode, network, gateway
    # decode) and the gateway's sender -> speaker (encode, network, jitter buffer, playout).
    up, down = [], []
    for (m, ph, lat, s), inside in zip(rows, in_window):
        if inside and ph == "steady" and s is not None:
            g = [t for t in at_gateway if m < t < s]
            if g:
                up.append(g[0] - m)
                down.append(s - g[0])
    if up:
        out["split_ms"] = {"mic_to_gateway_median": r1(1000 * statistics.median(up)),
                           "gateway_to_speaker_median": r1(1000 * statistics.median(down)),
                           "mic_to_gateway_p95": r1(1000 * pct(up, 0.95)),
                           "gateway_to_speaker_p95": r1(1000 * pct(down, 0.95)), "n": len(up)}
    if len(steady) >= 20:
        first = statistics.median([lat for _, lat in steady[:10]])
        last = statistics.median([lat for _, lat in steady[-10:]])
        out["growth"] = {"over_s": round(steady[-1][0] - steady[0][0], 1),
                         "first10_median_ms": r1(1000 * first), "last10_median_ms": r1(1000 * last),
                         "growth_ms": r1(1000 * (last - first))}
    baseline = statistics.median([lat for _, lat in steady[-10:]]) if steady else None

    tail = next((r for r in rows if r[1] == "tail"), None)
    click_seen, paused, resumed, held = pause
    out["tail"] = {"paused": paused is not None,
                   "pause_s": round(resumed - paused, 2) if paused and resumed else None,
                   "packets_held": held}
    if tail is not None and baseline is not None:
        if tail[2] is None:
            out["tail"]["late_ms"] = None
            out["tail"]["note"] = "the tail click was not heard within 3 s"
        else:
            out["tail"].update(baseline_ms=r1(1000 * baseline), latency_ms=r1(1000 * tail[2]),
                               late_ms=r1(1000 * (tail[2] - baseline)))
    after = [r[2] for r in rows if r[1] == "after-pause"]
    out["tail"]["after_pause_latency_ms"] = [r1(1000 * a) if a is not None else None for a in after]

    loss = [r for r in rows if r[1] == "loss"]
    out["loss"] = {"dropped_packets": len(dropped)}
    if dropped:
        t_drop = dropped[0].at
        before = [lat for m, _, lat, s in loss if lat is not None and s is not None and s < t_drop]
        later = [(s, lat) for m, _, lat, s in loss if lat is not None and s is not None and s >= t_drop]
        missing_after = sum(1 for m, _, lat, s in loss if lat is None and m > t_drop - 0.5)
        if before and later:
            base = statistics.median(before)
            tol = RECOVERY_TOLERANCE_MS / 1000
            bad = [i for i, (s, lat) in enumerate(later) if lat > base + tol]
            if not bad:
                recovery = 0.0
            elif bad[-1] == len(later) - 1:
                recovery = None   # still above the baseline at the end
            else:
                recovery = later[bad[-1] + 1][0] - t_drop
            out["loss"].update(
                baseline_ms=r1(1000 * base), max_after_ms=r1(1000 * max(lat for _, lat in later)),
                max_excess_ms=r1(1000 * (max(lat for _, lat in later) - base)),
                last_ms=r1(1000 * later[-1][1]),
                settled_excess_ms=r1(1000 * (statistics.median(lat for _, lat in later[-5:]) - base)),
                recovery_s=None if recovery is None else round(recovery, 2),
                recovered=recovery is not None, watched_s=r1(later[-1][0] - t_drop),
                clicks_missing=missing_after,
                after_ms=[r1(1000 * lat) for _, lat in later])
            # Which leg holds the excess: mic -> gateway's sender, or gateway -> speaker.
            legs: dict[str, list[float]] = {"up_before": [], "down_before": [], "up_after": [],
                                            "down_after": []}
            for m, phase, lat, s in rows:
                g = [t for t in at_gateway if s is not None and m < t < s]
                if phase == "loss" and g:
                    when = "before" if s < t_drop else "after"
                    legs[f"up_{when}"].append(g[0] - m)
                    legs[f"down_{when}"].append(s - g[0])
            out["loss"]["legs_median_ms"] = {k: r1(1000 * statistics.median(v)) if v else None
                                             for k, v in legs.items()}
    return out


# --- the whole run -------------------------------------------------------------------------------


def row(figure: str, goal: str, results: dict[str, dict], getter: Callable[[dict], Any]) -> dict:
    out: dict[str, Any] = {"figure": figure, "goal": goal}
    for name, res in results.items():
        with contextlib.suppress(Exception):
            out[name] = getter(res)
        out.setdefault(name, None)
    return out


def verdicts(results: dict[str, dict]) -> dict[str, Any]:
    p = results.get("polyphone")
    c = results.get("chromium")
    if not p:
        return {}
    lat = p.get("latency_ms") or {}
    clat = (c or {}).get("latency_ms") or {}
    loss = p.get("loss") or {}
    tail = p.get("tail") or {}

    def ok(cond) -> bool | None:
        try:
            return bool(cond())
        except Exception:
            return None

    return {
        "latency_median_ms": ok(lambda: lat["median"] <= 150
                                and (not clat or lat["median"] <= clat["median"])),
        "latency_p95_ms": ok(lambda: lat["p95"] <= 150 and (not clat or lat["p95"] <= clat["p95"])),
        "loss_recovery_s": ok(lambda: loss["recovery_s"] is not None and loss["recovery_s"] <= 2),
        "tail_late_ms": ok(lambda: tail["late_ms"] is not None and tail["late_ms"] <= 100),
        "growth_ms": ok(lambda: p["growth"]["growth_ms"] <= 20),
        "cpu_percent_of_core": ok(lambda: p["cpu_percent_of_core"] <= 10),
        "rss_mb": ok(lambda: p["rss_mb"] <= 150),
    }


def summary(results: dict[str, dict]) -> list[dict]:
    return [
        row("latency median (ms)", GOALS["latency_median_ms"], results, lambda r: r["latency_ms"]["median"]),
        row("latency p95 (ms)", GOALS["latency_p95_ms"], results, lambda r: r["latency_ms"]["p95"]),
        row("  of which mic -> gateway (median ms)", "", results,
            lambda r: r["split_ms"]["mic_to_gateway_median"]),
        row("  of which gateway -> speaker (median ms)", "", results,
            lambda r: r["split_ms"]["gateway_to_speaker_median"]),
        row("loss: back to baseline within (s)", GOALS["loss_recovery_s"], results,
            lambda r: r["loss"]["recovery_s"] if r["loss"].get("recovered") else "never"),
        row("loss: worst excess after the drop (ms)", "", results, lambda r: r["loss"]["max_excess_ms"]),
        row("loss: excess that stays (ms, last 5 clicks)", "", results,
            lambda r: r["loss"]["settled_excess_ms"]),
        row("tail click late vs due (ms)", GOALS["tail_late_ms"], results, lambda r: r["tail"]["late_ms"]),
        row("latency growth (ms)", GOALS["growth_ms"], results, lambda r: r["growth"]["growth_ms"]),
        row("growth measured over (s)", "600", results, lambda r: r["growth"]["over_s"]),
        row("CPU (% of one core)", GOALS["cpu_percent_of_core"], results, lambda r: r["cpu_percent_of_core"]),
        row("RSS (MB; Chromium: sum of its processes)", GOALS["rss_mb"], results, lambda r: r["rss_mb"]),
        row("PSS (MB; shared pages counted once)", "", results, lambda r: r["pss_mb"]),
    ]


def print_table(rows: list[dict], names: list[str]) -> None:
    head = f"{'figure':44} {'goal':26} " + " ".join(f"{n:>14}" for n in names)
    print(head, file=sys.stderr)
    for r in rows:
        print(f"{r['figure']:44} {r['goal']:26} " + " ".join(f"{str(r.get(n)):>14}" for n in names),
              file=sys.stderr)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    for n in names:
        if n not in CLIENTS:
            raise SystemExit(f"unknown client {n!r} (choose from {', '.join(CLIENTS)})")
    if any(n.startswith("chromium") for n in names) and chromium.available():
        raise SystemExit(chromium.available())
    why = sound_server.available()
    if why:
        raise SystemExit(why)
    schedule = make_schedule(args.seconds, args.long_minutes, args.interval)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="polyphone-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    server = sound_server.start(root / "pulse")
    results: dict[str, dict] = {}
    try:
        server.warm_up()
        async with LocalGateway(tokens=[TOKEN], agent="echo") as gateway:
            with chromium.PageServer() as pages:
                for _ in range(args.repeat):
                    for name in names:
                        key = name
                        if key in results:
                            key = f"{name}#{sum(k.split('#')[0] == name for k in results) + 1}"
                        log(f"{key}: calling ({schedule.length + WARM_AFTER_ANSWER:.0f} s of call)")
                        try:
                            res = await run_client(name, server, gateway, schedule,
                                                   root / key.replace("#", "-"), pages, args.pause_style)
                        except Exception as exc:
                            log(f"{key}: failed: {exc!r}")
                            res = {"client": name, "error": repr(exc)}
                        results[key] = res
                        await asyncio.sleep(1.0)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    table = summary(results)
    print_table(table, list(results))
    return {
        "bench": "audio_latency",
        "settings": {"seconds": args.seconds, "long_minutes": args.long_minutes,
                     "interval_s": args.interval, "clients": names, "repeat": args.repeat,
                     "tail_pause_s": TAIL_PAUSE_S, "pause_style": args.pause_style,
                     "recovery_tolerance_ms": RECOVERY_TOLERANCE_MS,
                     "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "goals": GOALS,
        "summary": table,
        "polyphone_meets_goals": verdicts(results),
        "results": results,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="latency window: median/p95 over this many seconds of clicks (default 60)")
    ap.add_argument("--long-minutes", type=float, default=1.0,
                    help="length of the steady phase for the growth figure (default 1; the goal is "
                         "stated for 10)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between clicks (default 1)")
    ap.add_argument("--clients", default="polyphone,chromium",
                    help="comma-separated, in order (default polyphone,chromium; any of "
                         f"{', '.join(CLIENTS)})")
    ap.add_argument("--repeat", type=int, default=1, help="run the client list this many times")
    ap.add_argument("--pause-style", choices=("dtx", "encoder-hold"), default="dtx",
                    help="how the gateway's sender pauses after the tail click (see TailPause)")
    ap.add_argument("--keep", metavar="DIR", help="keep recordings and logs in DIR")
    return ap.parse_args(argv)


if __name__ == "__main__":
    result = asyncio.run(main(parse_args()))
    json.dump(result, sys.stdout, indent=1)
    print()
