"""A real, private PulseAudio server with virtual devices, for tests.

`start(tmp_dir)` runs `pulseaudio` with its own HOME / XDG dirs and this
configuration: a virtual speaker `spk` ("VirtualSpeaker"), a sink `micsink`
("MicFeed") whose monitor is remapped into the virtual microphone `vmic`
("VirtualMic"), defaults `spk` / `vmic`, all at 48 kHz. Audio written to
`micsink` comes out of `vmic`; what plays on `spk` can be recorded from
`spk.monitor`. Needs the Debian packages `pulseaudio pulseaudio-utils`
(and `libasound2-plugins libportaudio2` for PortAudio to reach it).

The session fixture `sound_server` starts one server per test session, points
this process at it (PULSE_SERVER) and re-initialises PortAudio, which froze
its device list when `sounddevice` was imported. Register it with
`pytest_plugins = ["helpers.sound_server"]` in tests/conftest.py.

Idle null sinks: a null sink nobody reads with low latency
renders in ~2 s chunks, so a stream that connects to it can stall that long.
`warm_up()` keeps a 10 ms-latency reader on both monitors until `stop()`;
with it, a 0.5 s tone plays in ~0.47 s, without it in ~2 s, every time (a
warm-up that ends lets the stall come straight back).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.processes import stop_process
from helpers.waits import wait_until

RATE = 48_000
START_TIMEOUT = 10.0
PACTL_TIMEOUT = 10.0
WARM_UP_SECONDS = 2.5

DEFAULT_PA = "".join(line + "\n" for line in (
    "load-module module-native-protocol-unix auth-anonymous=1",
    "load-module module-null-sink sink_name=spk"
    " sink_properties=device.description=VirtualSpeaker rate=48000",
    "load-module module-null-sink sink_name=micsink"
    " sink_properties=device.description=MicFeed rate=48000",
    "load-module module-remap-source source_name=vmic master=micsink.monitor"
    " source_properties=device.description=VirtualMic",
    "set-default-sink spk",
    "set-default-source vmic",
))
DAEMON_CONF = "default-sample-rate = 48000\n"
CLIENT_CONF = "autospawn = no\n"  # a client must never start a server in the real HOME

RAW = ["--format=s16le", f"--rate={RATE}", "--channels=1", "--raw"]
REQUIRED = ("pulseaudio", "pactl", "pacat", "parec")


def available() -> str | None:
    """None if a server can be started here, else why not."""
    missing = [exe for exe in REQUIRED if shutil.which(exe) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (Debian pulseaudio pulseaudio-utils; "
                "build/setup.sh --test installs them)")
    return None


class Recorder:
    """`parec` from one source into memory (int16 mono 48 kHz) until `stop()`.

    With `discard`, only counts what arrives (a reader that keeps a sink busy)."""

    def __init__(self, env: dict[str, str], source: str, *, discard: bool = False) -> None:
        self.source = source
        self.discard = discard
        self.received = 0  # bytes, kept or not
        self._proc = subprocess.Popen(
            ["parec", f"--device={source}", "--latency-msec=10", *RAW],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"parec {source}")
        self._thread.start()

    def _read(self) -> None:
        fd = self._proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            try:
                chunk = os.read(fd, 9600)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.received += len(chunk)
                if not self.discard:
                    self._data += chunk

    @property
    def samples(self) -> np.ndarray:
        """Everything recorded so far."""
        with self._lock:
            n = len(self._data) // 2 * 2
            return np.frombuffer(bytes(self._data[:n]), dtype=np.int16)

    def wait_for(self, seconds: float, timeout: float | None = None) -> np.ndarray:
        """Wait until `seconds` of audio are in (at most `timeout`, default seconds + 5)."""
        want = int(seconds * RATE) * 2
        wait_until(lambda: self.received >= want, seconds + 5.0 if timeout is None else timeout, 0.02,
                   lambda: f"parec {self.source} to record {seconds:g} s "
                           f"(it has {self.received / 2 / RATE:.2f} s)", error=TimeoutError)
        return self.samples

    def stop(self) -> np.ndarray:
        stop_process(self._proc, 5)
        self._thread.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return self.samples


@dataclass
class SoundServer:
    env: dict[str, str]            # what a client needs: PULSE_SERVER, PULSE_CLIENTCONFIG
    root: Path
    proc: subprocess.Popen
    log_path: Path
    _keepers: list[Recorder] = field(default_factory=list)
    _modules: list[int] = field(default_factory=list)

    def child_env(self) -> dict[str, str]:
        """This process's environment pointed at the server (for subprocesses)."""
        return dict(os.environ, **self.env)

    def pactl(self, *args: str, timeout: float = PACTL_TIMEOUT) -> str:
        proc = subprocess.run(["pactl", *args], env=dict(self.child_env(), LC_ALL="C"),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
        return proc.stdout

    def load_module(self, name: str, *args: str) -> int:
        index = int(self.pactl("load-module", name, *args).strip())
        self._modules.append(index)
        return index

    def unload_module(self, index: int) -> None:
        self.pactl("unload-module", str(index))
        if index in self._modules:
            self._modules.remove(index)

    def add_sink(self, name: str, description: str) -> int:
        """A null sink `name` shown as `description`; returns its module index."""
        return self.load_module("module-null-sink", f"sink_name={name}", f"rate={RATE}",
                                f"sink_properties=device.description={description}")

    def play_into_mic(self, samples: np.ndarray, *, sink: str = "micsink",
                      wait: bool = True) -> subprocess.Popen:
        """Write int16 mono 48 kHz samples to `micsink` (so they come out of `vmic`).

        With `wait`, returns once pacat has played them all (bounded)."""
        pcm = np.ascontiguousarray(samples, dtype=np.int16).tobytes()
        proc = subprocess.Popen(["pacat", "--playback", f"--device={sink}",
                                 "--latency-msec=100", *RAW],
                                env=self.child_env(), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        feeder = threading.Thread(target=_feed, args=(proc, pcm), daemon=True)
        feeder.start()
        if wait:
            try:
                proc.wait(len(samples) / RATE + 5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                raise TimeoutError("pacat did not finish playing into micsink") from None
        return proc

    def record(self, source: str = "spk.monitor", *, discard: bool = False) -> Recorder:
        """Start recording `source` (default: what the virtual speaker plays)."""
        return Recorder(self.child_env(), source, discard=discard)

    def record_speaker(self, seconds: float) -> np.ndarray:
        """`seconds` of what the virtual speaker plays (int16 mono 48 kHz)."""
        rec = self.record("spk.monitor")
        try:
            rec.wait_for(seconds)
        finally:
            samples = rec.stop()
        return samples[:int(seconds * RATE)]

    def warm_up(self, seconds: float = WARM_UP_SECONDS) -> None:
        """Keep both null sinks rendering in small steps (readers stay until `stop()`)."""
        if not self._keepers:
            self._keepers = [self.record("spk.monitor", discard=True),
                             self.record("micsink.monitor", discard=True)]
            for keeper in self._keepers:
                keeper.wait_for(seconds, timeout=seconds + 10.0)

    def stop(self) -> None:
        for keeper in self._keepers:
            keeper.stop()
        self._keepers.clear()
        stop_process(self.proc, 5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _feed(proc: subprocess.Popen, pcm: bytes) -> None:
    try:
        proc.stdin.write(pcm)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    except (BrokenPipeError, OSError):
        pass


def start(tmp_dir: Path, *, timeout: float = START_TIMEOUT) -> SoundServer:
    """Start a private server under `tmp_dir`; RuntimeError (with its log) if it won't answer."""
    why = available()
    if why:
        raise RuntimeError(why)
    tmp_dir = Path(tmp_dir)
    home, runtime, config = tmp_dir / "home", tmp_dir / "run", tmp_dir / "config"
    for path in (home, config):
        path.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    (tmp_dir / "default.pa").write_text(DEFAULT_PA)
    (tmp_dir / "daemon.conf").write_text(DAEMON_CONF)
    (tmp_dir / "client.conf").write_text(CLIENT_CONF)
    client = {"PULSE_SERVER": f"unix:{runtime}/pulse/native",
              "PULSE_CLIENTCONFIG": str(tmp_dir / "client.conf")}
    server_env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime),
                      XDG_CONFIG_HOME=str(config), PULSE_CONFIG=str(tmp_dir / "daemon.conf"))
    for key in ("PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE", "PULSE_CLIENTCONFIG"):
        server_env.pop(key, None)
    log_path = tmp_dir / "pulseaudio.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(tmp_dir / "default.pa"), "--daemonize=no",
             "--exit-idle-time=-1", "--log-target=stderr"],
            env=server_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    server = SoundServer(env=client, root=tmp_dir, proc=proc, log_path=log_path)

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"pulseaudio exited ({proc.returncode}):\n{server.log_tail()}")
        try:
            return "Default Sink: spk" in server.pactl("info", timeout=2.0)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False

    try:
        wait_until(answers, timeout, 0.05, lambda: f"pulseaudio to answer:\n{server.log_tail()}",
                   error=RuntimeError)
    except BaseException:
        server.stop()
        raise
    return server


# --- pytest -----------------------------------------------------------------------

def _reinit_portaudio() -> None:
    """PortAudio froze its device list at import: make it look again (no stream is open)."""
    try:
        from polyphone.audio import devices
        devices.rescan(force=True)
    except Exception:  # PortAudio missing: tests that need it say so themselves
        pass


try:
    import pytest
except ImportError:  # usable outside pytest too
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture(scope="session")
    def sound_server(tmp_path_factory):
        """One private PulseAudio server for the session; this process points at it."""
        why = available()
        if why:
            pytest.skip(f"no sound server: {why}")
        server = start(tmp_path_factory.mktemp("sound-server"))
        old = {key: os.environ.get(key) for key in (*server.env, "PULSE_SINK", "PULSE_SOURCE")}
        try:
            server.warm_up()
            os.environ.update(server.env)
            os.environ.pop("PULSE_SINK", None)
            os.environ.pop("PULSE_SOURCE", None)
            _reinit_portaudio()
            yield server
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            server.stop()
            _reinit_portaudio()
