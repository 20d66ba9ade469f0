"""Composition root: QApplication + qasync event loop, stores, bridge, window.

`main(argv)` is what `polyphone` (no command) runs: it opens the window and
returns when it has closed (a call in progress is hung up cleanly first).
`--demo` places a call to the built-in local demo agent at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3
import sys
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .. import APP_NAME, __version__, config
from ..config import ConfigError, ProfileStore, Settings, SettingsStore
from ..history import HistoryError
from ..services.call_media import CALL_MODULES, pipeline_problem, warm_up
from .bridge import EngineBridge
from .first_paint import FirstPaint
from .gc_guard import MainThreadGC
from .icons import icon
from .main_window import MainWindow
from .theme import apply_theme

log = logging.getLogger("polyphone.gui")
DEMO_DELAY_MS = 300


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="polyphone", description=f"{APP_NAME}: the desktop app.")
    p.add_argument("--demo", action="store_true", help="call the built-in local demo agent at once")
    p.add_argument("--quit-after", type=float, metavar="S",
                   help="close the window (hanging up cleanly) after S seconds (smoke tests)")
    p.add_argument("--exit-when-shown", action="store_true",
                   help="print 'polyphone: window shown' once the window is on screen, then close "
                        "(start-up benchmarks)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print the event log's information lines on stderr")
    return p.parse_args(argv)


def first_launch(store: ProfileStore) -> bool:
    """Write the built-in profiles when there is no profiles file yet; True if it did."""
    if store.path.exists():
        return False
    store.save(config.builtin_profiles())
    return True


class Polyphone:
    """The running app's parts, assembled; `start()` shows the window and begins work."""

    def __init__(self, args: argparse.Namespace, **bridge_kwargs: Any) -> None:
        self.args = args
        self.notices: list[str] = []
        self.settings_store = SettingsStore()
        writable = True
        try:
            self.settings = self.settings_store.load()
        except ConfigError as exc:
            self.settings, writable = Settings(), False
            self.notices.append(str(exc))
        self.profiles = ProfileStore()
        try:
            first_launch(self.profiles)
        except OSError as exc:
            self.notices.append(f"The profiles could not be saved in {self.profiles.path} ({exc.strerror}).")
        self.bridge = EngineBridge(self.profiles, self.settings, **bridge_kwargs)
        try:  # now, not at the end of the first call (creating the file takes ~20 ms)
            self.bridge.history.open()
            if self.bridge.history.notice:
                self.notices.append(self.bridge.history.notice)
                self.bridge.history.notice = ""
        except (HistoryError, sqlite3.Error, OSError) as exc:
            self.notices.append(f"The call history is not available: {exc}")
        self.log_handler = self.bridge.log_handler()
        polyphone_log = logging.getLogger("polyphone")
        polyphone_log.addHandler(self.log_handler)
        polyphone_log.setLevel(self.settings.log_level.upper())
        self.window = MainWindow(self.bridge, self.settings_store, settings_writable=writable)
        problem = pipeline_problem()
        if problem:
            self.notices.append("The audio pipeline is not available in this build, so calls send "
                                f"silence and the agent is not played ({problem}).")

    def start(self) -> None:
        if self.args.exit_when_shown:
            self.first_paint = FirstPaint(self.window, self.window.close)
        self.window.show()
        for text in self.notices:
            self.window.banner.show_notice(text)
            self.bridge.log("warning", "app", text)
        self.bridge.lag.start()
        self.bridge.refresh_devices()
        self.bridge.check_keyring()
        asyncio.ensure_future(self.bridge.start_meter())
        asyncio.ensure_future(asyncio.to_thread(warm_up, CALL_MODULES))  # off the first paint
        if self.args.demo:  # once the window has been painted (its first paint takes ~40 ms)
            QTimer.singleShot(DEMO_DELAY_MS, self.call_demo)
        if self.args.quit_after:
            QTimer.singleShot(int(self.args.quit_after * 1000), self.window.close)

    def call_demo(self) -> None:
        self.window.reload_profiles(config.LOCAL_PROFILE)
        self.bridge.place_call(config.LOCAL_PROFILE, "")

    def stop(self) -> None:
        logging.getLogger("polyphone").removeHandler(self.log_handler)


def make_qapp() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication([sys.argv[0] if sys.argv else "polyphone"])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName("PolyAI")
    app.setDesktopFileName("polyphone")
    app.setWindowIcon(icon("polyphone.svg"))
    return app


def no_display() -> str:
    """Why the window cannot open here (Linux without a display), or ""."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return ""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return ""
    return ("Polyphone's window needs a desktop session, and no display was found "
            "(neither DISPLAY nor WAYLAND_DISPLAY is set). Run it from your desktop; "
            "without one, `polyphone call --demo` places a call from the command line.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    why = no_display()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    import qasync

    stderr = logging.StreamHandler()
    stderr.setLevel(logging.INFO if args.verbose else logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(stderr)
    app = make_qapp()
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    warm_up()
    polyphone = Polyphone(args)
    apply_theme(app, polyphone.settings.theme)
    collector = MainThreadGC(app)
    collector.start(freeze=True)
    polyphone.window.closed.connect(loop.stop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_a: QTimer.singleShot(0, polyphone.window.close))
    polyphone.start()
    try:
        loop.run_forever()
    finally:
        log.info("event loop lag: worst %.1f ms during the last call's set-up and call",
                 polyphone.bridge.last_max_lag_ms)
        polyphone.stop()
        collector.stop()
        loop.close()
        asyncio.set_event_loop(None)
    return 0
