# shellcheck shell=bash disable=SC2034
# Debian/Ubuntu packages Polyphone needs: the one place these lists live.
# Sourced by build/setup.sh (and later packaging hooks). An entry "a|b" is
# satisfied by either package; the first one apt knows is installed.

# Needed to run the app.
APT_RUNTIME=(
  # The system's CA certificates: wss:// to the gateway is checked against the OS trust
  # store (truststore), and update-ca-certificates installs a company CA there.
  ca-certificates
  # PortAudio: the sounddevice wheel on Linux does not bundle it.
  libportaudio2
  # Choosing a PulseAudio/PipeWire device: ALSA's `pulse` PCM (PortAudio opens
  # it with PULSE_SOURCE/PULSE_SINK set) and `pactl` to list the real devices.
  libasound2-plugins pulseaudio-utils
  # Qt's xcb platform plugin (PySide6 wheels bundle Qt, not these).
  libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-sync1
  libxcb-xkb1 libx11-xcb1 libegl1 libgl1 libfontconfig1 libdbus-1-3
  # Ubuntu 24.04 renamed it (64-bit time_t transition).
  "libglib2.0-0t64|libglib2.0-0"
)

# Needed to build the frozen app (build/package.sh; the tests build it too).
APT_BUILD=(
  # PyInstaller reads binaries with objdump; the spec runs strip.
  binutils
)
# The Python shared library (libpython3.X) PyInstaller bundles is added by build/setup.sh
# for --build and --test when the interpreter is the distribution's own: its name follows
# the interpreter's version (Ubuntu 24.04: libpython3.12t64).

# Needed only by the tests: real parts the test fixtures start.
APT_TEST=(
  # Sound server with virtual devices (pactl and ALSA's pulse PCM are runtime).
  pulseaudio
  # Secret Service keyring on a private session bus.
  dbus gnome-keyring
  # A real X display for screenshots.
  xvfb xauth
  # Making and measuring test sounds.
  sox
  # Checking the desktop entry (tests/integration/test_desktop_entry.py).
  desktop-file-utils
  # Network namespaces and veth links (tests/helpers/netns.py): network faults between
  # two hosts, and a non-loopback address for the ws:// refusal test.
  iproute2
  # A real libwebrtc peer: headless Chromium calls the local gateway
  # (tests/integration/test_chromium_interop.py, tests/bench/audio_latency.py).
  # Ubuntu ships it as chromium-browser (a snap through snapd).
  "chromium|chromium-browser"
)
