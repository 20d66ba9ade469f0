"""A real X display for GUI tests: Xvfb on a free display number, stopped afterwards.

Needs Debian's `xvfb` (build/setup.sh --test) and Qt's xcb libraries
(build/lib/apt-packages.sh). `start()` returns the DISPLAY value.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
from dataclasses import dataclass

from helpers.processes import stop_process


@dataclass
class Xvfb:
    display: str
    proc: subprocess.Popen

    def stop(self) -> None:
        stop_process(self.proc, 5)


def available() -> str | None:
    """None when Xvfb can run here, else why not."""
    return None if shutil.which("Xvfb") else "Xvfb is not installed (build/setup.sh --test)"


def start(size: str = "1280x860x24", timeout: float = 10.0) -> Xvfb:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp",
         "-noreset"], pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        number = b""
        while not number.endswith(b"\n"):  # read until the newline before closing the pipe
            ready, _, _ = select.select([read_fd], [], [], timeout)
            if not ready:
                raise RuntimeError("Xvfb did not report its display in time")
            chunk = os.read(read_fd, 64)
            if not chunk:
                raise RuntimeError("Xvfb exited before reporting its display")
            number += chunk
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    finally:
        os.close(read_fd)
    return Xvfb(f":{number.decode().strip()}", proc)
