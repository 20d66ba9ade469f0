"""GUI tests: pytest-qt, offscreen, with the asyncio loop being qasync's (as in the app).

Tests are plain functions; `qloop.run(coro)` runs a coroutine on a fresh
qasync loop, so Qt events and asyncio callbacks interleave exactly as in the
running app. Nothing here touches the user's real config, data or keyring.
"""

from __future__ import annotations

import asyncio
import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import qasync  # noqa: E402

from helpers.qt_waits import Recorder, until  # noqa: E402,F401 (re-exported for tests)
from polyphone import config  # noqa: E402
from polyphone.engine.request import Timeouts  # noqa: E402
from polyphone.gui.bridge import EngineBridge  # noqa: E402
from polyphone.history import History  # noqa: E402
from polyphone.secrets import MemoryStore  # noqa: E402
from polyphone.services.call_media import SilentMedia  # noqa: E402
from polyphone.services.tokens import TokenVault  # noqa: E402


class QLoop:
    """In the app the loop runs for the whole session. Here it runs inside `run()`, but Qt
    events are also processed outside it (pytest-qt does so between test phases, and qasync's
    asyncio callbacks are Qt timers): between runs the loop stays registered as the running
    loop, so such a callback behaves as it would in the app instead of failing."""

    def __init__(self, loop: qasync.QEventLoop) -> None:
        self.loop = loop
        asyncio.events._set_running_loop(loop)

    def run(self, coro, timeout: float = 20.0):
        asyncio.events._set_running_loop(None)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            asyncio.events._set_running_loop(self.loop)

    def close(self) -> None:
        asyncio.events._set_running_loop(None)
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


@pytest.fixture(autouse=True)
def gc_on_the_qt_thread():
    """As in the app (gui/gc_guard.py): no collection in aiortc's or the executor's threads.

    Without it, a previous test's qasync loop (a QObject with timers) may be collected in a
    worker thread, and Qt later fires its timer on freed memory (a segfault)."""
    was = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if was:
        gc.enable()


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """Config and data of this test only; no session token from the environment."""
    monkeypatch.setenv("POLYPHONE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("POLYPHONE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POLYPHONE_TOKEN", raising=False)


@pytest.fixture
def qloop(qapp):
    qapp.setQuitOnLastWindowClosed(False)  # as in the app: closing a window must not stop the loop
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    q = QLoop(loop)
    try:
        yield q
    finally:
        try:
            q.close()
        finally:
            asyncio.set_event_loop(None)


def silent_factory(made: list | None = None):
    def factory(options, on_event):
        m = SilentMedia(on_event)
        m.options = options
        if made is not None:
            made.append(m)
        return m
    return factory


@pytest.fixture
def make_bridge(tmp_path, qloop):
    """`make_bridge(profiles=[...], keyring=None, **kw)`: a bridge on private stores."""
    made: list[EngineBridge] = []

    def make(profiles=None, keyring=None, **kw) -> EngineBridge:
        store = config.ProfileStore(tmp_path / "config" / "profiles.toml")
        store.save(profiles if profiles is not None else [
            config.Profile(name=config.LOCAL_PROFILE, region=config.LOCAL, mode="echo",
                           fetch_ice_servers=False)])
        kw.setdefault("media_factory", silent_factory(kw.pop("media", None)))
        kw.setdefault("timeouts", Timeouts(connect=10, answer=5, ws_open=5))
        bridge = EngineBridge(store, config.Settings(), vault=TokenVault(keyring or MemoryStore()),
                              history=History(tmp_path / "data" / "history.sqlite3"), **kw)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        qloop.run(bridge.shutdown(), 20)


@pytest.fixture
def make_window(make_bridge, qloop, tmp_path, qtbot):
    """`make_window(**make_bridge kwargs)`: a shown MainWindow; closed (cleanly) after the test."""
    from polyphone.gui.main_window import MainWindow
    windows = []

    def make(**kw):
        bridge = make_bridge(**kw)
        window = MainWindow(bridge, config.SettingsStore(tmp_path / "config" / "settings.toml"))
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        windows.append(window)
        return window

    yield make

    async def close(window):
        if window.isVisible():
            window.close()
            await until(lambda: window._shut_down, timeout=15)

    for window in windows:
        qloop.run(close(window), 20)
        window.deleteLater()
