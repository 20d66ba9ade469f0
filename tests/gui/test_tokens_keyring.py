"""Tokens through a real Secret Service (gnome-keyring on a private D-Bus): saved only there;
a locked keyring is explained and a session-only token (never written) still lets you call."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from helpers import keyring_daemon
from helpers.qt_waits import Recorder, until
from polyphone import config
from polyphone.gui.dialogs.profile_dialog import ProfileDialog
from polyphone.localgw import LocalGateway
from polyphone.secrets import KeyringStore
from polyphone.services.tokens import TokenVault

pytestmark = pytest.mark.skipif(not keyring_daemon.available(),
                                reason="needs dbus and gnome-keyring (build/setup.sh --test)")
TOKEN = "gui-keyring-token-51ad"


def restore(old) -> None:
    import keyring
    import keyring.core
    from keyring.backends import fail
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        keyring.core.init_backend()
    except Exception:  # no bus any more: no keyring, as before the test
        keyring.set_keyring(fail.Keyring())


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    unlocked = keyring_daemon.start(tmp_path_factory.mktemp("kr-open"))
    locked = keyring_daemon.start(tmp_path_factory.mktemp("kr-locked"), unlock=False)
    yield {"unlocked": unlocked, "locked": locked}
    unlocked.stop()
    locked.stop()


@pytest.fixture
def keyring_of(services):
    olds = []

    def activate(which: str):
        olds.append(services[which].activate())
        return KeyringStore()

    yield activate
    for old in reversed(olds):
        restore(old)


def test_the_profile_dialog_saves_the_token_in_the_secret_service_and_a_call_uses_it(
        keyring_of, make_bridge, qloop, qtbot, tmp_path) -> None:
    store = keyring_of("unlocked")
    gw = LocalGateway(tokens=[TOKEN])
    url = qloop.run(gw.start())
    bridge = make_bridge(profiles=[config.Profile(name="Secret", region=config.CUSTOM, url=url,
                                                  mode="echo", fetch_ice_servers=False)],
                         keyring=store)
    try:
        d = ProfileDialog(bridge.profiles, bridge.vault, select="Secret", offload=bridge.keyring)
        qtbot.addWidget(d)
        qloop.run(until(lambda: "keyring" in d.keyring.text() and "Checking" not in d.keyring.text()))
        assert "SecretService" in d.keyring.text()
        qtbot.keyClicks(d.form.token, TOKEN)
        saved: list[str] = []
        d.saved.connect(saved.append)
        qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
        qloop.run(until(lambda: saved))
        assert saved == ["Secret"]
        assert store.get("token:Secret") == TOKEN and bridge.vault.session.get("token:Secret") is None
        for path in (tmp_path / "config").rglob("*"):
            assert not path.is_file() or TOKEN not in path.read_text(errors="replace")
        seen = Recorder(bridge)

        async def call():
            task = bridge.place_call("Secret", "")
            await until(lambda: bridge.state == "CONNECTED")
            await bridge.hang_up()
            await task
        qloop.run(call())
        assert bridge.history.list()[0].result == "ended"
        assert all(TOKEN not in a[0].text for a in seen.of("log_line"))
        bridge.check_keyring()
        qloop.run(until(lambda: seen.of("keyring_status")))
        name, problem = seen.of("keyring_status")[0]
        assert "SecretService" in name and problem == ""
    finally:
        qloop.run(gw.stop())
        KeyringStore().delete("token:Secret")


def test_a_locked_keyring_gives_a_clear_message_and_a_session_token(keyring_of, qtbot, tmp_path) -> None:
    vault = TokenVault(keyring_of("locked"))
    problem = vault.probe()
    assert problem is not None and "locked" in str(problem).lower()
    lookup = vault.get("Anything")
    assert lookup.token is None and lookup.problem is not None
    saved = vault.save("Anything", TOKEN)
    assert saved.where == "session" and "session only" in saved.message and TOKEN not in saved.message
    assert vault.get("Anything").token == TOKEN
