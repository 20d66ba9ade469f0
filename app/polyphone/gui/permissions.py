"""Microphone access, where the OS makes the app ask for it (macOS; Qt answers Granted elsewhere).

macOS shows its "Polyphone would like to access the microphone" prompt once, and only for a
bundle whose Info.plist has NSMicrophoneUsageDescription (build/pyinstaller/bundle.py);
without that key, or after a "Don't Allow", the microphone delivers silence and no error.
So Polyphone asks on the first call (`request_microphone`), and the idle level meter waits
until access is granted (`microphone_granted`) instead of triggering the prompt at launch.
"""

from __future__ import annotations

import asyncio
import sys

from PySide6.QtCore import QCoreApplication, QMicrophonePermission, QObject, Qt


def microphone_status() -> Qt.PermissionStatus:
    if sys.platform.startswith("linux"):
        # No microphone permission on Linux: Qt answers Granted. Asking it anyway crashed the
        # process once in ~30 launches here (a segfault inside checkPermission, PySide6 6.11).
        return Qt.PermissionStatus.Granted
    app = QCoreApplication.instance()
    if app is None:
        return Qt.PermissionStatus.Undetermined
    permission = QMicrophonePermission()   # held until Qt has answered
    return app.checkPermission(permission)


def microphone_granted() -> bool:
    return microphone_status() == Qt.PermissionStatus.Granted


async def request_microphone(context: QObject) -> bool:
    """True when the microphone may be used; asks the person when they have not said yet."""
    status = microphone_status()
    app = QCoreApplication.instance()
    if status == Qt.PermissionStatus.Undetermined and app is not None:
        answer: asyncio.Future = asyncio.get_running_loop().create_future()

        def answered(permission) -> None:
            if not answer.done():
                answer.set_result(permission.status())

        permission = QMicrophonePermission()
        app.requestPermission(permission, context, answered)
        status = await answer
    return status == Qt.PermissionStatus.Granted
