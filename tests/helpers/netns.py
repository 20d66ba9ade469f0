"""Two network namespaces joined by a veth pair: a gateway host and a caller host on one machine.

`Link` makes namespaces `pp<pid>a` (the gateway's) and `pp<pid>b` (the caller's)
with 10.213.<n>.1/30 and .2/30 on the two ends of a veth, loopback up in both.
`run_in(ns, argv)` starts a process inside one; `blackout()` takes the link
down (both ends lose carrier: every packet is lost, as when Wi-Fi drops) and
`restore()` brings it back. Everything is removed on close, even after a failure.

Impairment (loss, delay, jitter) is the local gateway's `--impair` (localgw/impair.py):
`tc qdisc ... netem` needs the sch_netem kernel module, and `Link.netem_reason()`
says whether this kernel has it.

Also a TCP forwarder (`python -m helpers.netns forward HOST PORT`), run in the
caller's namespace: the caller's signaling goes to ws://127.0.0.1:<port> there --
Polyphone allows ws:// only to loopback -- and crosses the veth from the
forwarder, like an SSH tunnel, while the media goes straight across the veth.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

_count = 0


def unavailable_reason() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = subprocess.run(["ip", "netns", "add", f"ppprobe{os.getpid()}"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", f"ppprobe{os.getpid()}"], capture_output=True)
    return None


def _ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


class Link:
    def __init__(self) -> None:
        global _count
        _count += 1
        n = (os.getpid() * 7 + _count) % 250 + 1
        tag = f"pp{os.getpid() % 100000}x{_count}"
        self.gateway_ns, self.caller_ns = f"{tag}a", f"{tag}b"
        self.gateway_if, self.caller_if = f"{tag}ga", f"{tag}cb"
        self.gateway_ip, self.caller_ip = f"10.213.{n}.1", f"10.213.{n}.2"
        self._made: list[str] = []
        try:
            for ns in (self.gateway_ns, self.caller_ns):
                _ip("netns", "add", ns)
                self._made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", self.gateway_if, "netns", self.gateway_ns, "type", "veth",
                "peer", "name", self.caller_if, "netns", self.caller_ns)
            _ip("-n", self.gateway_ns, "addr", "add", f"{self.gateway_ip}/30", "dev", self.gateway_if)
            _ip("-n", self.caller_ns, "addr", "add", f"{self.caller_ip}/30", "dev", self.caller_if)
            self.restore()
        except BaseException:
            self.close()
            raise

    def argv(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def blackout(self) -> None:
        _ip("-n", self.caller_ns, "link", "set", self.caller_if, "down")

    def restore(self) -> None:
        _ip("-n", self.gateway_ns, "link", "set", self.gateway_if, "up")
        _ip("-n", self.caller_ns, "link", "set", self.caller_if, "up")

    def netem_reason(self) -> str | None:
        out = subprocess.run(self.argv(self.gateway_ns, "tc", "qdisc", "add", "dev", self.gateway_if,
                                       "root", "netem", "delay", "1ms"),
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            subprocess.run(self.argv(self.gateway_ns, "tc", "qdisc", "del", "dev", self.gateway_if,
                                     "root"), capture_output=True, timeout=10)
            return None
        return out.stderr.strip() or "tc netem failed"

    def close(self) -> None:
        for ns in reversed(self._made):  # deleting a namespace deletes its end of the veth
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self._made.clear()


async def start_forwarder(link: Link, port: int) -> tuple[asyncio.subprocess.Process, int]:
    """A forwarder in the caller's namespace to the gateway's port; returns (process, local port)."""
    helpers = str(Path(__file__).resolve().parent.parent)
    proc = await asyncio.create_subprocess_exec(
        *link.argv(link.caller_ns, sys.executable, "-m", "helpers.netns", "forward",
                   link.gateway_ip, str(port)),
        cwd=helpers, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 15)
    return proc, int(line.split()[-1])


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _forward(host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_w), _pump(up_r, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"forwarding {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["forward"]:
    asyncio.run(_forward(sys.argv[2], int(sys.argv[3])))
