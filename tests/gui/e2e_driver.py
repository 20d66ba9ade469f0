"""Drives the real app under a real X display, as a person would; run by test_e2e_xvfb.py.

usage: python e2e_driver.py OUT_DIR   (environment: DISPLAY, PULSE_SERVER, the keyring's
D-Bus, POLYPHONE_CONFIG_DIR / POLYPHONE_DATA_DIR). Writes OUT_DIR/report.json and the
screenshots idle.png, call.png, error.png (grabbed from the X server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import qasync
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QWidget

from polyphone import config
from polyphone.gui import app as gapp
from polyphone.gui.gc_guard import MainThreadGC
from polyphone.gui.theme import apply_theme
from polyphone.localgw import LocalGateway
from polyphone.paths import resource
from polyphone.secrets import KeyringStore, token_key
from polyphone.services.call_media import warm_up

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers
from helpers import waits  # noqa: E402

STAGING = "Staging (local gateway)"
STAGING_TOKEN = "staging-token-7f3a9c"
EXPIRED = "expired-token-0d41b2"


async def until(predicate, timeout: float = 15.0, what: str = "") -> None:
    await waits.until(predicate, timeout, 0.05, what or None, error=TimeoutError)


def shot(window: QWidget, path: Path) -> None:
    pixmap = QApplication.primaryScreen().grabWindow(window.winId())
    if not pixmap.save(str(path)):
        raise RuntimeError(f"could not save {path}")


def pick(box: QComboBox, text: str) -> None:
    index = next(i for i in range(box.count()) if text in box.itemText(i))
    box.setCurrentIndex(index)
    box.activated.emit(index)


def choose_profile(window, name: str) -> None:
    box = window.call_bar.profile_box
    box.setCurrentIndex(box.findData(name))


async def add_staging_profile(window, url: str, report: dict) -> None:
    dialog = window.open_profiles(new=True)
    await until(dialog.isVisible, what="the profile dialog")
    f = dialog.form
    f.name.setText(STAGING)
    f.target.setCurrentIndex(f.target.findData(config.CUSTOM))
    f.url.setText(url)
    f.mode.setCurrentIndex(f.mode.findData("echo"))
    f.fetch_ice.setChecked(False)
    QTest.keyClicks(f.token, EXPIRED)
    await until(dialog.ready.is_set, what="the dialog's keyring look-up (a worker thread)")
    report["keyring_shown"] = dialog.keyring.text()
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    await until(lambda: window.dialog is None, what="the dialog to close (deleted on close)")
    report["token_in_keyring"] = KeyringStore().get(token_key(STAGING)) == EXPIRED


async def demo_call(p: gapp.Polyphone, out: Path, report: dict) -> None:
    w, b = p.window, p.bridge
    turns: list[float] = []
    b.turn_latency.connect(lambda _n, ms: turns.append(ms))
    states: list[str] = []
    b.state_changed.connect(lambda s, _p, _r: states.append(s))
    choose_profile(w, config.LOCAL_PROFILE)
    QTest.mouseClick(w.call_bar.call_button, Qt.MouseButton.LeftButton)
    await until(lambda: b.state == "CONNECTED", 20, "CONNECTED")
    await asyncio.sleep(4.5)  # the demo agent's greeting
    speaker = subprocess.Popen(["paplay", "--device=micsink", str(resource("sounds/caller-demo.wav"))])
    await until(lambda: turns, 20, "the agent's reply (a turn latency)")
    await asyncio.sleep(1.0)
    shot(w, out / "call.png")
    panel, quality = w.connection_panel, w.call_panel
    report["call"] = {
        "status": w.call_bar.status.text(), "timer": w.call_bar.timer_label.text(),
        "connection": {k: v.text() for k, v in panel.values.items()},
        "pair": panel.pair_kind.text(), "session": panel.session.text(),
        "stats": {k: v.text() for k, v in quality.value_labels.items()}, "codec": quality.codec.text(),
        "turns_ms": turns, "mic_meter": w.device_panel.input_meter.level_dbfs,
    }
    speaker.wait(15)
    w.activateWindow()  # no window manager on Xvfb: make the window active for its shortcuts
    await until(lambda: QApplication.activeWindow() is w, 5, "the window to become active")
    QTest.keyClick(w.call_bar.profile_box, Qt.Key.Key_Escape)
    await until(lambda: not b.busy and b.state == "ENDED", 15, "the call to end (Esc)")
    report["states"] = states
    r = b.history.list()[0]
    report["history"] = {"profile": r.profile, "result": r.result, "session_id": r.session_id,
                         "duration_s": r.duration_s, "turns": r.turn_latencies_ms,
                         "recording": r.recording_path}
    report["lag_ms"] = b.last_max_lag_ms


async def scenario(p: gapp.Polyphone, out: Path, report: dict) -> None:
    w = p.window
    staging = LocalGateway(tokens=[STAGING_TOKEN])
    url = await staging.start()
    try:
        dev = w.device_panel
        await until(lambda: dev.input_box.count() > 1 and dev.output_box.count() > 1, what="devices")
        pick(dev.input_box, "VirtualMic")
        pick(dev.output_box, "VirtualSpeaker")
        await until(lambda: p.settings.input_device.endswith("vmic"), what="the microphone choice")
        await until(lambda: "checking" not in w.keyring_label.text(), what="the keyring status")
        await asyncio.sleep(1.0)
        report["keyring_label"] = w.keyring_label.text()
        shot(w, out / "idle.png")
        await add_staging_profile(w, url, report)
        await demo_call(p, out, report)
        choose_profile(w, STAGING)
        QTest.mouseClick(w.call_bar.call_button, Qt.MouseButton.LeftButton)
        await until(lambda: not w.banner.isHidden() and not p.bridge.busy, 15, "the error banner")
        await asyncio.sleep(0.3)
        shot(w, out / "error.png")
        report["error"] = {"title": w.banner.title.text(), "action": w.banner.action_button.text()}
        w.close()
        await until(lambda: w._shut_down, 15, "the window to close")
    finally:
        await staging.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    config.SettingsStore().save(config.Settings(recording=True, theme="light"))
    app = gapp.make_qapp()
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    warm_up()
    p = gapp.Polyphone(gapp.parse_args([]))
    apply_theme(app, p.settings.theme)
    collector = MainThreadGC(app)
    collector.start(freeze=True)
    report: dict = {"platform": app.platformName()}
    p.start()
    try:
        loop.run_until_complete(asyncio.wait_for(scenario(p, out, report), 120))
    except BaseException as exc:
        report["failure"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        (out / "report.json").write_text(json.dumps(report, indent=2))
        p.stop()
        collector.stop()
        loop.close()  # joins qasync's executor threads (a QThread alive at exit aborts)
        asyncio.set_event_loop(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
