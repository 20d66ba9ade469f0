"""A real Secret Service keyring for tests: a private D-Bus session bus + gnome-keyring.

`start(tmp_dir, unlock=True)` returns a `SecretService` whose `env` points
`keyring` (in this process after `activate()`, or in a child process) at it.
Needs the Debian packages `dbus` and `gnome-keyring` (build/setup.sh --test).

The module fixture `keyring_env` (registered in tests/conftest.py) is an unlocked
keyring's environment for child processes, one per test module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers.processes import stop_process
from helpers.waits import wait_until

BUS_NAME = "org.freedesktop.secrets"


@dataclass
class SecretService:
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def activate(self) -> dict[str, str | None]:
        """Point this process's keyring at the service; returns the old values to restore."""
        import keyring.core

        old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        keyring.core.init_backend()
        return old

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc, 5)


def available() -> bool:
    return bool(shutil.which("dbus-daemon") and shutil.which("gnome-keyring-daemon"))


def _bus_has(env: dict[str, str], name: str) -> bool:
    out = subprocess.run(
        ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames"],
        env=env, capture_output=True, text=True, timeout=5)
    return f'"{name}"' in out.stdout


def start(tmp_dir: Path, *, unlock: bool = True, timeout: float = 10.0) -> SecretService:
    home, runtime = tmp_dir / "home", tmp_dir / "run"
    home.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime),
               XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("PYTHON_KEYRING_BACKEND", None)
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    service = SecretService(env={}, procs=[bus])
    try:
        address = bus.stdout.readline().strip()  # type: ignore[union-attr]
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        args = ["gnome-keyring-daemon", "--foreground", "--components=secrets"]
        if unlock:
            args.insert(2, "--unlock")
        keyring_proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        service.procs.append(keyring_proc)
        if unlock:
            keyring_proc.stdin.write(b"test-keyring-password")  # type: ignore[union-attr]
        keyring_proc.stdin.close()  # type: ignore[union-attr]
        def on_the_bus() -> bool:
            if keyring_proc.poll() is not None:
                raise RuntimeError(f"gnome-keyring-daemon exited ({keyring_proc.returncode})")
            return _bus_has(env, BUS_NAME)

        wait_until(on_the_bus, timeout, 0.1, "gnome-keyring-daemon to appear on the bus",
                   error=RuntimeError)
    except BaseException:
        service.stop()
        raise
    service.env = {k: env[k] for k in ("DBUS_SESSION_BUS_ADDRESS", "HOME", "XDG_RUNTIME_DIR",
                                       "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    return service


@pytest.fixture(scope="module")
def keyring_env(tmp_path_factory):
    """The environment of an unlocked private keyring, for the processes a test starts."""
    if not available():
        pytest.skip("dbus-daemon / gnome-keyring-daemon are not installed (build/setup.sh --test)")
    service = start(tmp_path_factory.mktemp("keyring"))
    yield service.env
    service.stop()
