"""PyInstaller runtime hook (Linux): sounddevice loads the bundled PortAudio.

sounddevice finds PortAudio with ctypes.util.find_library("portaudio"), which asks the
system's linker cache: it would load the system's copy when there is one and fail when
there is none. The bundle carries libportaudio.so.2 at its top level (sys._MEIPASS);
this makes find_library answer with that file for "portaudio", and leaves every other
name to the original.
"""


def _use_bundled_portaudio():
    import ctypes.util
    import glob
    import os
    import sys

    bundled = sorted(glob.glob(os.path.join(sys._MEIPASS, "libportaudio.so*")))
    if not bundled:
        return
    original = ctypes.util.find_library

    def find_library(name):
        if name == "portaudio":
            return bundled[0]
        return original(name)

    ctypes.util.find_library = find_library


_use_bundled_portaudio()
del _use_bundled_portaudio
