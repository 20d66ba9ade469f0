"""The bridge against the real local gateway on loopback: signals, history, tokens, errors."""

from __future__ import annotations

import asyncio

import pytest

from helpers.qt_waits import Recorder, until
from helpers.stores import LockedStore
from polyphone import config
from polyphone.engine.events import ErrorKind, SelectedPair, StatsSample
from polyphone.localgw import LocalGateway
from polyphone.secrets import token_key
from polyphone.services import errors

TOKEN = "bridge-test-token-7d2e"


def test_a_local_demo_call_emits_every_kind_of_event_and_writes_history(make_bridge, qloop) -> None:
    made: list = []
    bridge = make_bridge(media=made)
    seen = Recorder(bridge)

    async def scenario():
        task = bridge.place_call(config.LOCAL_PROFILE, "")
        await until(lambda: bridge.state == "CONNECTED")
        await until(lambda: seen.of("stats_sampled"), timeout=3)
        await bridge.set_muted(True)
        await bridge.hang_up()
        await task

    qloop.run(scenario())
    states = seen.states()
    assert states[:2] == ["STARTING", "CONNECTING"] and states[-1] == "ENDED"
    assert {"NEGOTIATING", "CONNECTED", "ENDING"} <= set(states)
    components = {a[0] for a in seen.of("connection_changed")}
    assert {"signaling", "ice-gathering", "ice-connection", "dtls", "peer"} <= components
    assert isinstance(seen.of("pair_selected")[0][0], SelectedPair)
    assert isinstance(seen.of("stats_sampled")[0][0], StatsSample)
    sid, call_sid = seen.of("session_started")[0]
    assert sid and call_sid
    assert [a[0] for a in seen.of("busy_changed")] == [True, False]
    assert made[0].muted is True and made[0].options.record_path is None
    # the per-run gateway token never reaches the log
    assert all(bridge.phone.gateway.token not in e[0].text for e in seen.of("log_line"))
    rec = seen.of("call_finished")[0][0]
    assert rec.result == "ended" and rec.session_id == sid and rec.call_sid == call_sid
    assert rec.duration_s > 0 and rec.error_code == ""
    assert bridge.history.list()[0].session_id == sid
    assert bridge.phone.gateway.running


def test_a_remote_profile_reads_its_token_at_call_time(make_bridge, qloop) -> None:
    gw = LocalGateway(tokens=[TOKEN])
    url = qloop.run(gw.start())
    profile = config.Profile(name="Remote", region=config.CUSTOM, url=url, mode="echo",
                             fetch_ice_servers=False)
    bridge = make_bridge(profiles=[profile])
    seen = Recorder(bridge)
    try:
        # no token stored: a banner that opens the token field, and no call
        qloop.run(bridge.place_call("Remote", ""))
        err = seen.of("call_error")[0][0]
        assert err.kind is ErrorKind.CONFIG and errors.explain(err).action == errors.EDIT_TOKEN
        assert bridge.history.list()[0].result == "failed"
        # a wrong token: the gateway's UNAUTHORIZED, explained, with the same action
        bridge.vault.save("Remote", "wrong-token")
        qloop.run(bridge.place_call("Remote", ""))
        err = seen.of("call_error")[-1][0]
        assert err.code == "UNAUTHORIZED" and errors.explain(err).action == errors.EDIT_TOKEN
        assert bridge.history.list()[0].error_code == "UNAUTHORIZED"
        # the right one: connected
        bridge.vault.save("Remote", TOKEN)

        async def call():
            task = bridge.place_call("Remote", "")
            await until(lambda: bridge.state == "CONNECTED")
            await bridge.hang_up()
            await task
        qloop.run(call())
        assert bridge.history.list()[0].result == "ended"
        texts = " ".join(e[0].text for e in seen.of("log_line"))
        assert TOKEN not in texts and "wrong-token" not in texts
    finally:
        qloop.run(gw.stop())


LockedKeyring = LockedStore


def test_a_locked_keyring_is_explained_and_a_session_token_works(make_bridge, qloop) -> None:
    gw = LocalGateway(tokens=[TOKEN])
    url = qloop.run(gw.start())
    profile = config.Profile(name="Remote", region=config.CUSTOM, url=url, mode="echo",
                             fetch_ice_servers=False)
    bridge = make_bridge(profiles=[profile], keyring=LockedKeyring())
    seen = Recorder(bridge)
    try:
        qloop.run(bridge.place_call("Remote", ""))
        err = seen.of("call_error")[0][0]
        assert err.kind is ErrorKind.KEYRING and "locked" in err.message
        assert errors.explain(err).action == errors.EDIT_TOKEN
        saved = bridge.vault.save("Remote", TOKEN)
        assert saved.where == "session" and "session only" in saved.message
        assert bridge.vault.session.get(token_key("Remote")) == TOKEN

        async def call():
            task = bridge.place_call("Remote", "")
            await until(lambda: bridge.state == "CONNECTED")
            await bridge.hang_up()
            await task
        qloop.run(call())
        assert bridge.history.list()[0].result == "ended"
        assert any("session-only token" in e[0].text for e in seen.of("log_line"))
    finally:
        qloop.run(gw.stop())


def test_hanging_up_while_starting_cancels_cleanly(make_bridge, qloop) -> None:
    started = asyncio.Event()

    class SlowMedia:
        def __init__(self, options, on_event):
            from polyphone.services.call_media import SilentMedia
            self._inner = SilentMedia(on_event)
            self.source, self.sink = self._inner.source, self._inner.sink
            self.stopped = False

        async def start(self):
            started.set()
            await asyncio.sleep(30)

        async def stop(self):
            self.stopped = True

        def set_muted(self, muted):
            pass

    made: list = []
    bridge = make_bridge(media_factory=lambda o, e: made.append(SlowMedia(o, e)) or made[-1])
    seen = Recorder(bridge)

    async def scenario():
        task = bridge.place_call(config.LOCAL_PROFILE, "")
        await started.wait()
        await bridge.hang_up()
        await task

    qloop.run(scenario(), 10)
    assert seen.states() == ["STARTING", "ENDED"] and made[0].stopped
    assert bridge.history.list()[0].result == "cancelled" and not bridge.busy


def test_call_pressed_while_the_last_call_wraps_up_is_placed(make_bridge, qloop) -> None:
    """ENDED shows (and the Call button is back) before the devices are closed and the history
    row is written: a Call pressed in that moment waits for it instead of being dropped."""
    from polyphone.services.call_media import SilentMedia

    class SlowToStop(SilentMedia):
        async def stop(self):
            await asyncio.sleep(0.8)
            await super().stop()

    bridge = make_bridge(media_factory=lambda options, on_event: SlowToStop(on_event))
    seen = Recorder(bridge)

    async def scenario():
        first = bridge.place_call(config.LOCAL_PROFILE, "")
        await until(lambda: bridge.state == "CONNECTED")
        await bridge.hang_up()
        await until(lambda: bridge.state == "ENDED")
        assert bridge.busy                     # still closing the first call's audio
        second = bridge.place_call(config.LOCAL_PROFILE, "")
        await until(lambda: bridge.state == "CONNECTED")
        await bridge.hang_up()
        await first
        await second

    qloop.run(scenario(), 20)
    assert [r.result for r in bridge.history.list()] == ["ended", "ended"]
    assert [a[0] for a in seen.of("busy_changed")] == [True, False, True, False]
    assert not any("already running" in e[0].text for e in seen.of("log_line"))


def test_a_device_failure_is_a_device_error(make_bridge, qloop) -> None:
    from polyphone.audio.devices import DeviceError
    from polyphone.services.call_media import SilentMedia

    class NoMic(SilentMedia):
        async def start(self):
            raise DeviceError("The microphone “USB Headset” is not connected.",
                              "Plug it in or choose another microphone.")

    bridge = make_bridge(media_factory=lambda o, e: NoMic(e))
    seen = Recorder(bridge)
    qloop.run(bridge.place_call(config.LOCAL_PROFILE, ""))
    err = seen.of("call_error")[0][0]
    assert err.kind is ErrorKind.DEVICE and errors.explain(err).action == errors.CHOOSE_DEVICE
    assert seen.states()[-1] == "FAILED"


def test_recording_path_and_variant_reach_the_call(make_bridge, qloop, tmp_path) -> None:
    gw = LocalGateway(tokens=[TOKEN])
    url = qloop.run(gw.start())
    profile = config.Profile(name="Var test", region=config.CUSTOM, url=url, mode="echo",
                             fetch_ice_servers=False, variant_id="v-default",
                             variants=[config.Variant("Fast", "v-fast")])
    made: list = []
    bridge = make_bridge(profiles=[profile], media=made)
    bridge.vault.save("Var test", TOKEN)
    bridge.settings.recording = True
    bridge.settings.recording_folder = str(tmp_path / "rec")
    try:
        async def call():
            task = bridge.place_call("Var test", "Fast")
            await until(lambda: bridge.state == "CONNECTED")
            offer_variant = bridge.phone.call.request.variant_id
            await bridge.hang_up()
            await task
            return offer_variant
        assert qloop.run(call()) == "v-fast"
        path = made[0].options.record_path
        assert path.parent == tmp_path / "rec" and path.name.endswith("-Var-test.wav")
        assert bridge.history.list()[0].variant == "Fast"
    finally:
        qloop.run(gw.stop())


def test_events_from_another_thread_arrive_on_the_loop(make_bridge, qloop) -> None:
    """Before any call has run: the loop is the bridge's from the moment it is built."""
    import threading

    from polyphone.engine.events import TurnLatency
    bridge = make_bridge()
    seen = Recorder(bridge)

    async def scenario():
        threads = []
        for i in range(4):
            t = threading.Thread(target=lambda i=i: [bridge.on_event(TurnLatency(i * 100 + j, 500.0))
                                                    for j in range(50)])
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
        await until(lambda: len(seen.of("turn_latency")) == 200)

    qloop.run(scenario())
    assert sorted(a[0] for a in seen.of("turn_latency")) == sorted(
        i * 100 + j for i in range(4) for j in range(50))


@pytest.mark.parametrize("code", ["UNAUTHORIZED", "INVALID_ARGUMENT", "INVALID_MESSAGE",
                                  "HANDLER_ERROR", "MEDIA_BRIDGE_FAILURE", "AGENT_FAILURE"])
def test_every_gateway_code_has_words_and_an_action(code) -> None:
    from polyphone.engine.events import CallError
    from polyphone.protocol import explain
    what, todo = explain(code)
    e = errors.explain(CallError(ErrorKind.GATEWAY, what, todo, code=code))
    assert code in e.title and e.what == what and e.todo == todo and e.code == code
    if code == "UNAUTHORIZED":
        assert e.action == errors.EDIT_TOKEN and e.action_label == "Open token field"
