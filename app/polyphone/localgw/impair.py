"""A lossy, slow network in front of the local gateway's media sockets (netem in user space).

`tc qdisc ... netem` needs the kernel's sch_netem module, which not every kernel
has (the Firecracker kernels our CI runs on have none, and cannot load modules).
This does the same job one level up: every UDP datagram the gateway's ICE
sockets send or receive -- RTP, RTCP, DTLS and the STUN consent checks, as
netem would see them -- is dropped with probability `loss`, or delivered after
`delay_ms` plus a normally distributed jitter of standard deviation
`jitter_ms`. Both directions are impaired, as netem on both ends of a link
would. Unlike netem, jitter never reorders packets: each one leaves no earlier
than the one before it (most access networks keep order; netem's reordering
would turn jitter into extra loss at any in-order receiver).

The packets still cross a real network when the gateway and the client are
in different network namespaces (tests/helpers/netns.py); a blackout there is
the kernel's (the link goes down), not this module's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import rtc_internals

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)

_SPEC = re.compile(r"^\s*(loss|delay|jitter)\s*=\s*([0-9.]+)\s*(%|ms)?\s*$")


@dataclass(frozen=True)
class Impairment:
    loss: float = 0.0       # probability, 0..1
    delay_ms: float = 0.0   # one way, each direction
    jitter_ms: float = 0.0  # standard deviation of the added delay

    @property
    def active(self) -> bool:
        return self.loss > 0 or self.delay_ms > 0 or self.jitter_ms > 0

    @classmethod
    def parse(cls, text: str) -> "Impairment":
        """`loss=5%,delay=200ms,jitter=30ms` (each part optional)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            m = _SPEC.match(part)
            if m is None:
                raise ValueError(f"cannot read {part!r}: use loss=5%, delay=200ms, jitter=30ms")
            values[m.group(1)] = float(m.group(2))
        loss = values.get("loss", 0.0) / 100.0
        if not 0.0 <= loss <= 1.0:
            raise ValueError("loss must be between 0% and 100%")
        return cls(loss, values.get("delay", 0.0), values.get("jitter", 0.0))

    def __str__(self) -> str:
        return f"loss={self.loss * 100:g}%,delay={self.delay_ms:g}ms,jitter={self.jitter_ms:g}ms"


class _Line:
    """One direction of one socket: drop or hold each datagram, keeping order.

    Held datagrams wait in a FIFO drained by one timer (asyncio's timer heap does
    not keep the order of timers due at the same moment).
    """

    def __init__(self, imp: Impairment, rng: random.Random, deliver: Callable[..., Any]) -> None:
        self.imp, self.rng, self.deliver = imp, rng, deliver
        self.loop = asyncio.get_running_loop()
        self.held: collections.deque[tuple[float, tuple]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.passed = self.dropped = 0

    def __call__(self, *args: Any) -> None:
        if self.rng.random() < self.imp.loss:
            self.dropped += 1
            return
        self.passed += 1
        delay = self.imp.delay_ms + (self.rng.gauss(0.0, self.imp.jitter_ms) if self.imp.jitter_ms else 0.0)
        due = self.loop.time() + max(0.0, delay) / 1000.0
        if self.held:
            due = max(due, self.held[-1][0])
        elif due <= self.loop.time():
            self._send(args)
            return
        self.held.append((due, args))
        if self.timer is None:
            self.timer = self.loop.call_at(self.held[0][0], self._drain)

    def _drain(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.held and self.held[0][0] <= now:
            self._send(self.held.popleft()[1])
        if self.held:
            self.timer = self.loop.call_at(self.held[0][0], self._drain)

    def _send(self, args: tuple) -> None:
        try:
            self.deliver(*args)
        except Exception:  # the socket closed meanwhile: the packet is lost, as on a wire
            self.dropped += 1


def impair_peer(peer: "RTCPeerConnection", imp: Impairment, *, seed: int | None = None) -> list[_Line]:
    """Put `imp` on every ICE socket `peer` has gathered (call after setLocalDescription).

    Returns the per-direction lines (for counting). The sockets come from aioice's
    private state through rtc_internals (the "impair" hook): if aiortc or aioice changed
    it, nothing is impaired and a warning says so.
    """
    rng = random.Random(seed)
    lines: list[_Line] = []
    protocols = rtc_internals.ice_protocols(peer)
    for proto in protocols or []:
        transport = getattr(proto, "transport", None)
        if transport is None or getattr(proto, "_polyphone_impaired", False):
            continue
        out_line = _Line(imp, rng, transport.sendto)
        in_line = _Line(imp, rng, proto.datagram_received)
        transport.sendto = out_line         # type: ignore[method-assign]
        proto.datagram_received = in_line   # type: ignore[method-assign]
        proto._polyphone_impaired = True
        lines += [out_line, in_line]
    if protocols is not None and not lines:
        log.warning("impairment %s: no ICE sockets found (call after setLocalDescription); "
                    "nothing impaired", imp)
    return lines
