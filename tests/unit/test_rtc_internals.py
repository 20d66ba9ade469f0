"""The hooks into aiortc's and aioice's internals: each one's guard fails for real (a version
outside its range, an attribute changed on the live object) and the call still works, on
the libraries' stock behaviour, with a WARNING saying what is degraded.

Calls here are real aiortc peers on loopback (`iceServers=[]`), in this process.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from pathlib import Path

import aioice
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from helpers.waits import until
from polyphone import rtc_internals
from polyphone.audio import jitter
from polyphone.engine import ice
from polyphone.engine.ice import IceServer
from polyphone.localgw.faults import drop_next_rtp_packet
from polyphone.localgw.impair import Impairment, impair_peer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 8.0


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test sees its own first WARNING (they are said once per process)."""
    monkeypatch.setattr(rtc_internals, "_warned", set())


class ToneTrack(AudioStreamTrack):
    """aiortc's paced 20 ms frames (8 kHz mono), filled with a 440 Hz tone."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        t = (frame.pts + np.arange(frame.samples)) / frame.sample_rate
        pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        out = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
        return out


class Loopback:
    """A caller sending a tone to an answerer that reads what arrives, both in this process."""

    def __init__(self) -> None:
        self.caller = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: list[av.AudioFrame] = []
        self.caller.addTrack(ToneTrack())
        self.answerer.on("track", lambda track: asyncio.ensure_future(self._read(track)))

    async def _read(self, track) -> None:
        try:
            while True:
                self.frames.append(await track.recv())
        except MediaStreamError:  # the call ended
            pass

    async def connect(self, *, caller_before=None, answerer_before=None) -> None:
        """Offer/answer; `caller_before(pc)` runs before the caller's setLocalDescription,
        `answerer_before(pc)` before the answerer's (its transceiver exists then)."""
        if caller_before is not None:
            caller_before(self.caller)
        await self.caller.setLocalDescription(await self.caller.createOffer())
        await self.answerer.setRemoteDescription(self.caller.localDescription)
        if answerer_before is not None:
            answerer_before(self.answerer)
        await self.answerer.setLocalDescription(await self.answerer.createAnswer())
        await self.caller.setRemoteDescription(self.answerer.localDescription)

    async def tone_arrives(self, frames: int = 25) -> bool:
        """At least `frames` frames arrived, and the last ones carry the tone."""
        if not await until(lambda: len(self.frames) >= frames, WAIT_S, error=None):
            return False
        peak = max(int(np.abs(f.to_ndarray()).max()) for f in self.frames[-10:])
        return peak > 1000

    async def close(self) -> None:
        for pc in (self.caller, self.answerer):
            await asyncio.wait_for(pc.close(), 10)


@pytest.fixture
async def loopback():
    call = Loopback()
    yield call
    await call.close()


def warned(caplog, hook: str, words: str) -> bool:
    return any(r.levelno == logging.WARNING and r.name == rtc_internals.__name__
               and r.getMessage().startswith(f"{hook}: ") and words in r.getMessage()
               for r in caplog.records)


def status_of(name: str) -> rtc_internals.HookStatus:
    return next(s for s in rtc_internals.status() if s.name == name)


# --- the installed libraries ------------------------------------------------------------------


def test_every_hook_applies_to_the_installed_libraries() -> None:
    hooks = rtc_internals.status()
    assert [h.name for h in hooks] == list(rtc_internals.HOOKS)
    assert all(h.ok and not h.degraded for h in hooks), hooks


def test_the_pins_are_the_ranges_the_hooks_were_written_for() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {m.group(1).lower(): (m.group(2), m.group(3)) for m in
            (re.match(r"^([A-Za-z0-9_.-]+)>=([0-9.]+),<([0-9.]+)$", d) for d in deps) if m}
    for hook in rtc_internals.HOOKS.values():
        for lib, (low, high) in hook.written_for.items():
            assert pins.get(lib) == (".".join(map(str, low)), ".".join(map(str, high))), \
                f"{hook.name}: pyproject's {lib} pin is not the range the hook was written for"


# --- jitter: the guard fails, the call goes on with aiortc's buffer --------------------------


async def test_jitter_on_another_aiortc_warns_and_the_call_carries_audio(
        monkeypatch, caplog, loopback) -> None:
    monkeypatch.setitem(rtc_internals.VERSIONS, "aiortc", "1.17.0")
    installed = []
    await loopback.connect(
        answerer_before=lambda pc: installed.append(jitter.install(pc.getTransceivers()[0].receiver)))
    assert installed == [None]
    assert await loopback.tone_arrives(), f"only {len(loopback.frames)} frames arrived"
    assert loopback.frames[-1].layout.name == "stereo"  # aiortc's own decoder thread made them
    assert warned(caplog, "jitter", "aiortc 1.17.0 is not a version this hook was written for "
                                    "(1.16 to below 1.17); using aiortc's stock jitter buffer (+80 ms")
    jitter_status = status_of("jitter")
    assert not jitter_status.ok and "stock jitter buffer" in jitter_status.degraded
    assert "aiortc 1.17.0" in jitter_status.why


async def test_jitter_attribute_gone_from_the_live_receiver_warns_and_audio_flows(
        caplog, loopback) -> None:
    installed = []

    def install(pc) -> None:
        receiver = pc.getTransceivers()[0].receiver
        receiver._polyphone_stock = getattr(receiver, jitter._ATTR)
        delattr(receiver, jitter._ATTR)  # as if aiortc renamed its buffer
        installed.append(jitter.install(receiver))
        setattr(receiver, jitter._ATTR, receiver._polyphone_stock)  # aiortc's, under the new name

    await loopback.connect(answerer_before=install)
    assert installed == [None]
    assert await loopback.tone_arrives(), f"only {len(loopback.frames)} frames arrived"
    assert warned(caplog, "jitter", "no longer has _RTCRtpReceiver__jitter_buffer as a JitterBuffer")


async def test_without_the_inline_decoder_hook_the_buffer_hands_frames_to_aiortc(
        monkeypatch, caplog, loopback) -> None:
    monkeypatch.setitem(rtc_internals.VERSIONS, "av", "19.0.0")
    buffers = []
    await loopback.connect(
        answerer_before=lambda pc: buffers.append(jitter.install(pc.getTransceivers()[0].receiver)))
    buffer = buffers[0]
    assert isinstance(buffer, jitter.ReleasingBuffer) and buffer.decode is None
    assert await loopback.tone_arrives()
    assert buffer.released >= 25 and loopback.frames[-1].layout.name == "stereo"
    assert warned(caplog, "inline-decode", "av 19.0.0 is not a version")
    assert not status_of("inline-decode").ok and status_of("jitter").ok


async def test_jitter_install_still_works_and_refuses_video_quietly(caplog) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        audio, video = pc.addTransceiver("audio"), pc.addTransceiver("video")
        buffer = jitter.install(audio.receiver)
        assert isinstance(buffer, jitter.ReleasingBuffer) and buffer.decode is not None
        assert jitter.install(audio.receiver) is buffer
        assert jitter.install(video.receiver) is None
        assert warned(caplog, "jitter", "only an audio receiver")
    finally:
        await pc.close()


# --- gather budget: the guard fails, gathering keeps aioice's wait ---------------------------


async def test_gather_budget_on_a_changed_aioice_warns_and_gathering_still_works(
        caplog, loopback) -> None:
    budgets = []

    def change_and_bound(pc) -> None:
        conn = pc.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
        original = conn.get_component_candidates
        # as if aioice dropped the timeout parameter
        conn.get_component_candidates = lambda component, addresses: original(component, addresses)
        budgets.append(ice.apply_gather_budget(pc, [IceServer(("stun:192.0.2.1:3478",))]))

    await loopback.connect(caller_before=change_and_bound)
    assert budgets == [rtc_internals.AIOICE_GATHER_WAIT_S]
    assert "a=candidate:" in loopback.caller.localDescription.sdp
    assert await loopback.tone_arrives()
    assert warned(caplog, "gather-budget", "get_component_candidates takes (component, addresses)")


async def test_gather_budget_on_another_aioice_version_is_not_applied(monkeypatch, caplog) -> None:
    monkeypatch.setitem(rtc_internals.VERSIONS, "aioice", "0.14.0")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        assert ice.apply_gather_budget(pc, []) == rtc_internals.AIOICE_GATHER_WAIT_S
        conn = pc.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
        assert "get_component_candidates" not in vars(conn)  # aioice's own method, untouched
        await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), WAIT_S)
        assert "a=candidate:" in pc.localDescription.sdp
        assert warned(caplog, "gather-budget", "aioice 0.14.0 is not a version this hook was written for")
        assert not status_of("gather-budget").ok
    finally:
        await pc.close()


# --- activity --------------------------------------------------------------------------------


async def test_activity_stamps_datagrams_and_stun_requests_on_a_live_call(loopback) -> None:
    watched: dict[str, rtc_internals.Activity | None] = {}
    before = time.monotonic()
    await loopback.connect(  # before setLocalDescription on one side, after it on the other
        caller_before=lambda pc: watched.update(caller=rtc_internals.watch_activity(pc)))
    watched["answerer"] = rtc_internals.watch_activity(loopback.answerer)
    assert rtc_internals.watch_activity(loopback.answerer) is watched["answerer"]
    for side in ("caller", "answerer"):
        activity = watched[side]
        assert activity is not None
        assert await until(lambda: activity.data_at is not None and activity.stun_at is not None,
                           WAIT_S, error=None), f"{side}: {activity}"
        assert before <= activity.last_at <= time.monotonic()
    assert await loopback.tone_arrives()
    data_at = watched["answerer"].data_at
    assert await until(lambda: watched["answerer"].data_at > data_at, 2.0, error=None)  # keeps stamping


async def test_activity_on_a_changed_aioice_is_not_watched_and_the_call_works(
        monkeypatch, caplog, loopback) -> None:
    original = aioice.Connection.request_received

    def request_received(self, msg, address, proto):  # as if aioice renamed the parameters
        return original(self, msg, address, proto)

    monkeypatch.setattr(aioice.Connection, "request_received", request_received)
    watched = []
    await loopback.connect(answerer_before=lambda pc: watched.append(rtc_internals.watch_activity(pc)))
    assert watched == [None]
    assert await loopback.tone_arrives()
    assert warned(caplog, "activity", "Connection.request_received takes (self, msg, address, proto)")
    assert not status_of("activity").ok


async def test_activity_on_another_aioice_version_is_none_and_the_call_works(
        monkeypatch, caplog, loopback) -> None:
    monkeypatch.setitem(rtc_internals.VERSIONS, "aioice", "0.14.1")
    watched = []
    await loopback.connect(caller_before=lambda pc: watched.append(rtc_internals.watch_activity(pc)))
    assert watched == [None]
    assert await loopback.tone_arrives()
    assert warned(caplog, "activity", "aioice 0.14.1 is not a version")


async def test_activity_before_any_transceiver_is_none(caplog) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        assert rtc_internals.watch_activity(pc) is None
        assert warned(caplog, "activity", "no ICE transport yet")
    finally:
        await pc.close()


# --- the local gateway's hooks, and stats ------------------------------------------------------


async def test_gateway_faults_and_stats_hooks_degrade_to_nothing(monkeypatch, caplog) -> None:
    monkeypatch.setitem(rtc_internals.VERSIONS, "aiortc", "1.15.9")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTrack(AudioStreamTrack())
        assert drop_next_rtp_packet(pc, []) is False
        assert impair_peer(pc, Impairment(loss=0.5)) == []
        assert rtc_internals.nominated_pair(pc) is None
        assert rtc_internals.negotiated_codec(pc) is None
        for hook in ("rtp-faults", "impair", "selected-pair", "codec-stats"):
            assert warned(caplog, hook, "aiortc 1.15.9 is not a version"), hook
        assert not any(s.ok for s in rtc_internals.status())
    finally:
        await pc.close()


async def test_selected_pair_and_codec_on_a_live_call(loopback) -> None:
    await loopback.connect()
    assert await loopback.tone_arrives()
    local, remote = rtc_internals.nominated_pair(loopback.caller)
    assert local.type == "host" and remote.host and remote.port
    assert rtc_internals.negotiated_codec(loopback.caller).mimeType.lower() == "audio/opus"


async def test_a_failing_rtp_filter_sends_the_packet_unchanged(loopback) -> None:
    seen = []

    def keep(data: bytes, ssrc: int) -> bytes:
        seen.append(ssrc)
        raise RuntimeError("a bug in a fault")

    await loopback.connect(caller_before=lambda pc: seen.append(
        rtc_internals.filter_sent_rtp(pc.getSenders()[0], keep)))
    assert seen[0] is True
    assert await loopback.tone_arrives() and len(seen) > 25


# --- the whole call path, and the self-test line -------------------------------------------------


async def test_a_full_call_through_the_engine_works_with_every_hook_degraded(monkeypatch, caplog) -> None:
    from polyphone.cli import self_test

    monkeypatch.setitem(rtc_internals.VERSIONS, "aiortc", "1.17.0")
    summary = await asyncio.wait_for(self_test._loopback_call(), 30)
    assert "returned" in summary
    for hook in ("jitter", "gather-budget", "activity"):
        assert warned(caplog, hook, "aiortc 1.17.0 is not a version"), hook


def test_self_test_line_warns_without_failing(monkeypatch) -> None:
    from polyphone.cli import self_test

    line = self_test._run("rtc", self_test.check_rtc)
    assert line.ok and not line.warn and line.line().startswith("PASS rtc: aiortc ")
    assert all(f"{name} OK" in line.detail for name in rtc_internals.HOOKS)
    monkeypatch.setitem(rtc_internals.VERSIONS, "av", "19.0.0")
    line = self_test._run("rtc", self_test.check_rtc)
    assert line.ok and line.warn
    text = line.line()
    assert text.startswith("WARN rtc: ") and "jitter OK" in text
    assert "inline-decode WARN (av 19.0.0 is not a version" in text and "decoder thread" in text
