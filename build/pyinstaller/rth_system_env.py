"""PyInstaller runtime hook (Linux): programs the app starts get the system's library path.

The bootloader points LD_LIBRARY_PATH at the bundle so that the app finds its own
libraries; the dynamic linker read it when this process started, so changing it now only
affects child processes. Those are system programs (pactl, the desktop's cache tools)
that must load the system's libraries, not the bundle's: restore what the user had
(PyInstaller keeps it in LD_LIBRARY_PATH_ORIG). The app re-running itself (the self-test's
Qt check) goes through the bootloader again, which sets the bundle's path anew.
"""


def _restore_library_path():
    import os

    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = original


_restore_library_path()
del _restore_library_path
