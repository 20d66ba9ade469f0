"""The profile dialog never stalls a call: with a keyring whose every call takes 0.3 s (as a
D-Bus keyring can), opening the dialog, typing a token and saving it during a live call keeps
the event loop (the Qt thread, which also carries the call's audio) under 50 ms of lag, while
the same keyring call made on the loop shows up as a stall of the whole 0.3 s.

What is measured is the keyring, not the disk or Qt's start-up: the dialog's profiles.toml is
written on tmpfs here (its fsync, on the loop by design, took 150-550 ms on a busy test disk),
and one dialog is built before the call (the first one pays Qt's and PySide's one-off set-up,
lazy enums and styles: 40 ms cold, several hundred ms with cold pages on a loaded machine).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from helpers.qt_waits import until
from polyphone import config
from polyphone.gui.dialogs.profile_dialog import ProfileDialog
from polyphone.secrets import MemoryStore, token_key
from polyphone.services.tokens import TokenVault

SLOW_S = 0.3
GOAL_MS = 50.0
TOKEN = "slow-keyring-token-40be"
OLD_TOKEN = "old-token-9a71"


class SlowKeyring(MemoryStore):
    """Every call blocks for SLOW_S, like a D-Bus round trip to a busy keyring daemon."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _wait(self) -> None:
        self.calls += 1
        time.sleep(SLOW_S)

    def get(self, key):
        self._wait()
        return super().get(key)

    def set(self, key, value):
        self._wait()
        super().set(key, value)

    def delete(self, key):
        self._wait()
        return super().delete(key)

    def backend_name(self):
        self._wait()
        return "SlowKeyring"


@pytest.fixture
def fast_store(tmp_path):
    """A profiles file on tmpfs when there is one (Linux): its fsync costs nothing."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="polyphone-test-", dir=shm)) if shm.is_dir() else tmp_path
    store = config.ProfileStore(folder / "profiles.toml")
    store.save(profiles())
    yield store
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def profiles() -> list[config.Profile]:
    return [config.Profile(name=config.LOCAL_PROFILE, region=config.LOCAL, mode="echo",
                           fetch_ice_servers=False),
            config.Profile(name="Staging", region=config.CUSTOM, mode="echo", fetch_ice_servers=False,
                           url="wss://gateway.example.com/api/v1/webrtc/signal")]


async def save_a_token_in_the_dialog(bridge, store, qtbot) -> ProfileDialog:
    d = ProfileDialog(store, bridge.vault, select="Staging", offload=bridge.keyring)
    qtbot.addWidget(d)
    d.show()
    assert d.keyring.text() == "Checking the system keyring…"
    assert "Checking" in d.form.token_status.text()
    await until(d.ready.is_set, timeout=10)
    assert "SlowKeyring" in d.keyring.text() and "stored in the keyring" in d.form.token_status.text()
    qtbot.keyClicks(d.form.token, TOKEN)
    saved: list[str] = []
    d.saved.connect(saved.append)
    qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    assert not d.save_button.isEnabled()     # until the token is written
    await until(lambda: saved, timeout=10)
    assert saved == ["Staging"] and not d.isVisible()
    return d


def test_the_profile_dialog_keeps_a_call_responsive_over_a_slow_keyring(make_bridge, fast_store, qloop,
                                                                       qtbot):
    keyring = SlowKeyring()
    keyring._data[token_key("Staging")] = OLD_TOKEN   # stored before: no delay
    bridge = make_bridge(profiles=profiles(), keyring=keyring)
    figures = {}
    warm = ProfileDialog(fast_store, TokenVault(MemoryStore()))
    qloop.run(warm.ready.wait())
    warm.reject()

    async def scenario():
        bridge.lag.start()
        task = bridge.place_call(config.LOCAL_PROFILE, "")
        await until(lambda: bridge.state == "CONNECTED")
        states: list[str] = []
        bridge.state_changed.connect(lambda state, *_: states.append(state))
        await until(lambda: bridge.lag.samples > 5)
        bridge.lag.reset()
        started, calls = time.monotonic(), keyring.calls
        await save_a_token_in_the_dialog(bridge, fast_store, qtbot)
        figures.update(offloaded_ms=bridge.lag.max_ms, samples=bridge.lag.samples,
                       seconds=time.monotonic() - started, calls=keyring.calls - calls)
        assert states == [] and bridge.state == "CONNECTED"
        # the contrast: one such keyring call made on the loop itself, during the same call
        bridge.lag.reset()
        asyncio.get_running_loop().call_soon(keyring.get, token_key("Staging"))
        await until(lambda: bridge.lag.samples > 5)
        figures["on_the_loop_ms"] = bridge.lag.max_ms
        assert bridge.state == "CONNECTED"
        await bridge.hang_up()
        await task

    try:
        qloop.run(scenario(), 40)
    finally:
        bridge.lag.stop()
    print(f"\nevent loop lag over {figures['seconds']:.2f} s of the profile dialog "
          f"({figures['calls']} keyring calls of {SLOW_S} s in a worker thread, "
          f"{figures['samples']} ticks): worst {figures['offloaded_ms']:.1f} ms; "
          f"one keyring call on the loop: {figures['on_the_loop_ms']:.1f} ms")
    assert figures["calls"] >= 5 and figures["seconds"] >= 5 * SLOW_S
    assert figures["samples"] >= figures["seconds"] * 1000 / 20 * 0.5   # measured throughout
    assert figures["offloaded_ms"] < GOAL_MS, f"the call's loop stalled for {figures['offloaded_ms']} ms"
    assert figures["on_the_loop_ms"] > 250, "the monitor would not have caught a keyring call on the loop"
    assert keyring._data[token_key("Staging")] == TOKEN            # in the keyring, not the session
    assert bridge.vault.session.get(token_key("Staging")) is None
    assert bridge.history.list()[0].result == "ended"
