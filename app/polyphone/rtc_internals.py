"""The one module that reaches into aiortc's, aioice's and PyAV's private attributes.

Each such use is a named hook in `HOOKS`: the library versions it was written for and a
check that the attributes it needs are on the live objects with the right types. A hook
returns normally when it applied. When its guard fails (a version outside the range, an
attribute missing or changed) or applying it raises, it does not raise into the call: it
logs a WARNING saying what is degraded and returns None or False ("not applied"), and the
caller carries on with the libraries' stock behaviour. `status()` is for the self-test.

Where the hooks are (aiortc 1.16, aioice 0.13): `RTCRtpReceiver.__jitter_buffer` is the
audio `JitterBuffer(16, prefetch=4)`, `_track._queue` what the remote track's `recv()`
reads. `RTCIceGatherer._connection` is the `aioice.Connection`, made with the transceiver
and kept: `get_component_candidates(..., timeout=5)` awaits STUN/TURN, `_nominated` holds
the selected pair, `_protocols` the sockets, whose `StunProtocol.datagram_received` hands
DTLS/SRTP/SRTCP datagrams to `Connection.data_received(data, component)` and STUN requests
(the remote's connectivity and consent checks) to `request_received(message, addr,
protocol)` (aioice 0.10 added `raw_data`). The sender awaits `RTCDtlsTransport._send_rtp`
for each RTP/RTCP packet before SRTP; `RTCRtpSender._ssrc`, `RTCRtpTransceiver._codecs`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import aioice
import aiortc
import av
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import RemoteStreamTrack

log = logging.getLogger(__name__)

# The installed versions the guards compare (tests change them to make a guard fail):
VERSIONS = {"aiortc": aiortc.__version__, "aioice": aioice.__version__, "av": av.__version__}
"""The installed versions the guards compare (tests replace entries to make a guard fail)."""
JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
AIOICE_GATHER_WAIT_S = 5.0  # aioice's own STUN/TURN wait, when gather-budget does not apply
PROBE_TIMEOUT_S = 10.0
_KIND_ATTR = "_RTCRtpReceiver__kind"
_OURS = "_polyphone_jitter"       # on a receiver: the buffer we installed
_WATCHED = "_polyphone_activity"  # on an aioice Connection: its Activity
_MISSING = object()
T = TypeVar("T")
Version = tuple[int, ...]
Deliver = Callable[[av.AudioFrame], None]


class Changed(Exception):
    """A live object is not what a hook was written for; the message says how."""


@dataclass(frozen=True)
class Hook:
    name: str
    written_for: dict[str, tuple[Version, Version]]  # library -> (lowest, first one above)
    degraded: str   # what the app loses when the hook does not apply
    target: str     # what it hooks: "receiver", "sender" or "pc"
    check: Callable[[Any], None]  # raises Changed


@dataclass(frozen=True)
class HookStatus:
    name: str
    ok: bool
    degraded: str = ""  # what the app loses ("" when ok)
    why: str = ""       # why the guard failed


@dataclass
class Activity:
    """When the remote was last heard on any ICE connection of a peer (time.monotonic())."""

    stun_at: float | None = None  # a STUN request: the remote's connectivity or consent check
    data_at: float | None = None  # a DTLS, SRTP or SRTCP datagram

    @property
    def last_at(self) -> float | None:
        return max((t for t in (self.stun_at, self.data_at) if t is not None), default=None)


# --- the checks: one per hook, on the object it hooks -----------------------------------
def _attr(obj: Any, name: str, kind: type | tuple[type, ...], owner: str) -> Any:
    value = getattr(obj, name, _MISSING)
    if value is _MISSING:
        raise Changed(f"{owner} has no {name}")
    if not isinstance(value, kind):
        raise Changed(f"{owner}.{name} is a {type(value).__name__}")
    return value


def _params(method: Any, want: tuple[str, ...], owner: str) -> None:
    if not callable(method):
        raise Changed(f"{owner} is missing")
    names = tuple(inspect.signature(method).parameters)
    if names[:len(want)] != want:
        raise Changed(f"{owner} takes ({', '.join(names)}), not ({', '.join(want)})")


def _connections(pc: RTCPeerConnection) -> list[Any]:
    """The aioice Connection of each ICE transport of pc (checked), once each."""
    out: list[Any] = []
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.sender.transport.transport.iceGatherer
        conn = _attr(gatherer, "_connection", aioice.Connection, "RTCIceGatherer")
        if all(conn is not c for c in out):
            out.append(conn)
    return out


def _check_jitter(receiver: Any) -> None:
    current = getattr(receiver, JITTER_ATTR, None)
    if not isinstance(current, JitterBuffer) and current is not getattr(receiver, _OURS, _MISSING):
        raise Changed(f"aiortc's RTCRtpReceiver no longer has {JITTER_ATTR} as a JitterBuffer "
                      f"(found {type(current).__name__})")
    _attr(receiver, _KIND_ATTR, str, "RTCRtpReceiver")


def _check_inline_decode(receiver: Any) -> None:
    _attr(receiver, "_track", (RemoteStreamTrack, type(None)), "RTCRtpReceiver")
    _attr(RemoteStreamTrack(kind="audio"), "_queue", asyncio.Queue, "RemoteStreamTrack")


def _check_gather_budget(pc: Any) -> None:
    for conn in _connections(pc):
        if not isinstance(conn.get_component_candidates, functools.partial):
            _params(conn.get_component_candidates, ("component", "addresses", "timeout"),
                    "Connection.get_component_candidates")


def _check_selected_pair(pc: Any) -> None:
    for conn in _connections(pc):
        _attr(conn, "_nominated", dict, "aioice Connection")


def _check_codec_stats(pc: Any) -> None:
    for transceiver in pc.getTransceivers():
        _attr(transceiver, "_codecs", list, "RTCRtpTransceiver")


def _check_activity(pc: Any) -> None:
    for conn in _connections(pc):  # on the class: an instance may hold our wrappers
        cls = type(conn)
        _params(getattr(cls, "data_received", None), ("self", "data", "component"),
                "Connection.data_received")
        _params(getattr(cls, "request_received", None), ("self", "message", "addr", "protocol"),
                "Connection.request_received")


def _check_rtp_faults(sender: Any) -> None:
    transport = _attr(sender, "transport", RTCDtlsTransport, "RTCRtpSender")
    if not inspect.iscoroutinefunction(getattr(transport, "_send_rtp", None)):
        raise Changed("RTCDtlsTransport has no coroutine _send_rtp")
    _attr(sender, "_ssrc", int, "RTCRtpSender")


def _check_impair(pc: Any) -> None:
    for conn in _connections(pc):
        for proto in _attr(conn, "_protocols", list, "aioice Connection"):
            if not callable(getattr(proto, "datagram_received", None)) or not hasattr(proto, "transport"):
                raise Changed(f"aioice's {type(proto).__name__} has no datagram_received or transport")


_AIORTC = {"aiortc": ((1, 16), (1, 17))}
_ICE = {**_AIORTC, "aioice": ((0, 13), (0, 14))}
HOOKS: dict[str, Hook] = {h.name: h for h in (
    Hook("jitter", _AIORTC, "using aiortc's stock jitter buffer (+80 ms latency, stalls after loss)",
         "receiver", _check_jitter),
    Hook("inline-decode", {**_AIORTC, "av": ((17, 1), (19,))},
         "audio is decoded on aiortc's decoder thread (stereo, a thread hop per 20 ms frame)",
         "receiver", _check_inline_decode),
    Hook("gather-budget", _ICE, "ICE gathering waits aioice's full 5 s for an unreachable STUN/TURN "
         "server", "pc", _check_gather_budget),
    Hook("selected-pair", _ICE, "the selected candidate pair (addresses and types) is not shown",
         "pc", _check_selected_pair),
    Hook("codec-stats", _AIORTC, "the negotiated codec is not shown in call stats", "pc", _check_codec_stats),
    Hook("activity", _ICE, "the time of the last packet from the remote is unknown (media liveness "
         "counts RTP only)", "pc", _check_activity),
    Hook("rtp-faults", _AIORTC, "the local gateway's RTP faults (drop_packet_after, pause_rtp) do "
         "nothing", "sender", _check_rtp_faults),
    Hook("impair", _ICE, "the local gateway's loss/delay/jitter impairment is not applied",
         "pc", _check_impair),
)}


# --- the guard ----------------------------------------------------------------------------
def version_problem(name: str, versions: dict[str, str] | None = None) -> str | None:
    """Why the installed libraries are not what hook `name` was written for, or None."""
    versions = VERSIONS if versions is None else versions
    for lib, (low, high) in HOOKS[name].written_for.items():
        installed = versions.get(lib, "?")
        found = re.match(r"\d+(?:\.\d+)*", installed)  # "1.16.0rc1" -> (1, 16, 0)
        if not low <= (tuple(map(int, found.group().split("."))) if found else ()) < high:
            wanted = f"{'.'.join(map(str, low))} to below {'.'.join(map(str, high))}"
            return f"{lib} {installed} is not a version this hook was written for ({wanted})"
    return None


def _problem(name: str, live: Any) -> str | None:
    try:
        HOOKS[name].check(live)
    except Changed as exc:
        return str(exc)
    except Exception as exc:  # a check that trips over a changed library is a failed check
        return f"{type(exc).__name__}: {exc}"
    return None


_warned: set[tuple[str, str]] = set()


def _degrade(name: str, why: str) -> None:
    """Say what is degraded: a WARNING the first time in this process, DEBUG after."""
    level = logging.DEBUG if (name, why) in _warned else logging.WARNING
    _warned.add((name, why))
    log.log(level, "%s: %s; %s", name, why, HOOKS[name].degraded)


def _guarded(name: str, not_applied: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Run the hook only when its guard passes, and never let it raise."""
    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def hook(live: Any, *args: Any, **kwargs: Any) -> T:
            why = version_problem(name) or _problem(name, live)
            if why is None:
                try:
                    return fn(live, *args, **kwargs)
                except Changed as exc:
                    why = str(exc)
                except Exception as exc:
                    why = f"applying it failed ({type(exc).__name__}: {exc})"
            _degrade(name, why)
            return not_applied
        return hook
    return wrap


# --- the hooks ------------------------------------------------------------------------------
@_guarded("jitter", None)
def install_audio_buffer(receiver: Any, make: Callable[[Deliver | None], T], *, inline: bool = True) \
        -> T | None:
    """`make(deliver)` in place of an audio receiver's jitter buffer (idempotent). `deliver(frame)`
    queues a decoded frame for the remote track; None without `inline` or when inline-decode
    does not apply (then the buffer hands frames back to aiortc's decoder thread)."""
    ours = getattr(receiver, _OURS, None)
    if ours is not None and getattr(receiver, JITTER_ATTR) is ours:
        return ours
    if getattr(receiver, _KIND_ATTR) != "audio":
        raise Changed("only an audio receiver's buffer is replaced")
    buffer = make(track_deliverer(receiver) if inline else None)
    setattr(receiver, JITTER_ATTR, buffer)
    setattr(receiver, _OURS, buffer)
    return buffer


@_guarded("inline-decode", None)
def track_deliverer(receiver: Any) -> Deliver | None:
    """A function that queues a decoded AudioFrame for the receiver's remote track."""

    def deliver(frame: av.AudioFrame) -> None:
        track = receiver._track  # made with the remote description, before any RTP arrives
        if track is not None:
            track._queue.put_nowait(frame)
    return deliver


def rtp_payload(packet: Any) -> bytes:
    """What aiortc depayloaded into `packet._data`, else the payload (the same for Opus)."""
    data = getattr(packet, "_data", None)
    return packet.payload if data is None else data


@_guarded("gather-budget", False)
def bound_gather_wait(pc: RTCPeerConnection, seconds: float) -> bool:
    """Bound aioice's STUN/TURN wait in gathering (the first bound stays); before setLocalDescription."""
    for conn in _connections(pc):
        method = conn.get_component_candidates
        if not isinstance(method, functools.partial):
            conn.get_component_candidates = functools.partial(method, timeout=seconds)
    return True


@_guarded("selected-pair", None)
def nominated_pair(pc: RTCPeerConnection) -> tuple[Any, Any] | None:
    """(local, remote) aioice Candidates of the first nominated pair (component 1), or None."""
    for conn in _connections(pc):
        pair = conn._nominated.get(1)
        if pair is not None:
            return pair.local_candidate, pair.remote_candidate
    return None


@_guarded("codec-stats", None)
def negotiated_codec(pc: RTCPeerConnection) -> Any | None:
    """The RTCRtpCodecParameters in use (the last transceiver's first codec), or None."""
    found = None
    for transceiver in pc.getTransceivers():
        found = transceiver._codecs[0] if transceiver._codecs else found
    return found


@_guarded("activity", None)
def watch_activity(pc: RTCPeerConnection) -> Activity | None:
    """An Activity stamped whenever an ICE connection of `pc` receives a datagram or a STUN
    request (any: even one that fails authentication). Call it once the transceivers exist
    (addTransceiver for an offer, setRemoteDescription for an answer), before or after
    setLocalDescription: aioice's connection is made with the transceiver and kept. Called
    again, it returns the same Activity."""
    conns = _connections(pc)
    if not conns:
        raise Changed("the peer connection has no ICE transport yet")
    activity = next((getattr(c, _WATCHED) for c in conns if getattr(c, _WATCHED, None)), None)
    activity = activity or Activity()
    for conn in conns:
        if getattr(conn, _WATCHED, None) is None:
            _stamp(conn, "data_received", activity, "data_at")
            _stamp(conn, "request_received", activity, "stun_at")
            setattr(conn, _WATCHED, activity)
    return activity


def _stamp(conn: Any, method: str, activity: Activity, field: str) -> None:
    """Wrap conn.method (an instance attribute): note the time, then call through."""
    original = getattr(conn, method)

    def stamped(*args: Any, **kwargs: Any) -> Any:
        setattr(activity, field, time.monotonic())
        return original(*args, **kwargs)

    setattr(conn, method, stamped)


@_guarded("rtp-faults", False)
def filter_sent_rtp(sender: Any, keep: Callable[[bytes, int], bytes | None]) -> bool:
    """Every RTP/RTCP datagram the sender's DTLS transport is about to protect goes through
    `keep(data, sender_ssrc)`, which returns the bytes to send or None to drop them (other
    senders' packets pass there too: compare the SSRC). A `keep` that raises sends `data`."""
    transport, ssrc = sender.transport, sender._ssrc
    original = transport._send_rtp

    async def send_rtp(data: bytes) -> None:
        try:
            out = keep(data, ssrc)
        except Exception:
            log.exception("an RTP filter failed; the packet is sent unchanged")
            out = data
        if out is not None:
            await original(out)

    transport._send_rtp = send_rtp
    return True


@_guarded("impair", None)
def ice_protocols(pc: RTCPeerConnection) -> list[Any] | None:
    """The DatagramProtocol (`transport`, `datagram_received`) of each ICE socket pc gathered."""
    return [proto for conn in _connections(pc) for proto in conn._protocols]


# --- the self-test's view -----------------------------------------------------------------
def status() -> list[HookStatus]:
    """Every hook: does it apply to the installed libraries, and if not, what is degraded.
    Checked on a throwaway peer connection (no sockets), in a thread with its own loop."""
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtc-internals-probe")
    try:
        problems = pool.submit(lambda: asyncio.run(_probe())).result(PROBE_TIMEOUT_S)
    except Exception as exc:
        problems = {name: f"the probe failed ({type(exc).__name__}: {exc})" for name in HOOKS}
    finally:
        pool.shutdown(wait=False)
    out = []
    for name, hook in HOOKS.items():
        why = version_problem(name) or problems.get(name)
        out.append(HookStatus(name, why is None, hook.degraded if why else "", why or ""))
    return out


async def _probe() -> dict[str, str | None]:
    """Each hook's check on a peer connection with one audio transceiver."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("audio")
        targets = {"pc": pc, "receiver": transceiver.receiver, "sender": transceiver.sender}
        return {name: _problem(name, targets[hook.target]) for name, hook in HOOKS.items()}
    finally:
        await pc.close()
