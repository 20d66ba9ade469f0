"""What the frozen app is made of, per OS: every decision build/polyphone.spec takes.

Plain Python with no PyInstaller import, so the choices for macOS and Windows can be
checked on Linux (tests/unit/test_bundle_options.py). `options(platform)` gives the
name, version, executables, icon, data files, binaries, exclusions and, for macOS,
the Info.plist; the spec only feeds them to Analysis / EXE / COLLECT / BUNDLE.
"""

from __future__ import annotations

import ast
import ctypes.util
import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "app" / "polyphone"
RESOURCES = ROOT / "resources"
HERE = Path(__file__).resolve().parent

BUNDLE_ID = "ai.poly.polyphone"
MIC_USAGE = ("Polyphone sends your voice to the voice agent you call. The microphone is used only "
             "during a call and for the microphone test and level meter.")
MACOS_MINIMUM = "12.0"  # Qt 6.8+ supports macOS 12 and later

# Qt modules Polyphone does not use (it uses QtCore, QtGui, QtWidgets and, through the icon
# engine, QtSvg). PyInstaller collects only what is imported; these also keep a stray
# import (qasync's fallbacks, a library's optional Qt support) from pulling them in.
QT_EXCLUDES = tuple(f"PySide6.{m}" for m in (
    "QtNetwork", "QtQml", "QtQuick", "QtQuickWidgets", "QtQuickControls2", "QtOpenGL",
    "QtOpenGLWidgets", "QtSql", "QtTest", "QtXml", "QtDBus", "QtConcurrent", "QtPrintSupport",
    "QtHelp", "QtDesigner", "QtUiTools", "QtSvgWidgets", "QtPdf", "QtPdfWidgets", "QtMultimedia",
    "QtMultimediaWidgets", "QtWebEngineCore", "QtWebEngineWidgets", "QtWebChannel",
    "QtWebSockets", "QtPositioning", "QtBluetooth", "QtNfc", "QtSerialPort", "QtCharts",
    "QtDataVisualization", "Qt3DCore", "QtNetworkAuth", "QtRemoteObjects", "QtScxml",
    "QtSensors", "QtSpatialAudio", "QtStateMachine", "QtTextToSpeech", "QtHttpServer",
    "QtGraphs", "QtLocation", "QtAxContainer",
))
# onnxruntime (~80 MB) is faster-whisper's voice-activity filter, which Polyphone leaves off
# (speech/whisper.py: vad_filter=False; phrases are cut by speech/transcribe.py).
OTHER_EXCLUDES = ("tkinter", "PyQt5", "PyQt6", "PySide2", "IPython", "matplotlib", "pytest",
                  "hypothesis", "livekit.rtc.jupyter", "pydoc_data", "onnxruntime")
# The system's ALSA stays the system's: libasound loads its plugins (the PulseAudio /
# PipeWire bridge) from a folder compiled into it (/usr/lib/x86_64-linux-gnu/alsa-lib on
# Debian, /usr/lib64/alsa-lib on Fedora), built for that libasound. Every Linux desktop has
# it. (libjack, which PortAudio also links, is bundled: without a JACK server it is unused.)
LINUX_SYSTEM_LIBS = ("libasound.so",)
# Qt plugins and files the app has no use for, as patterns on the path inside the bundle
# (PySide6/Qt/plugins/... on Linux and macOS, PySide6/plugins/... on Windows). Kept: the
# xcb, wayland, offscreen and minimal platforms (and cocoa, windows), SVG/ICO images, the
# SVG icon engine, the input contexts (compose keys, IBus) and the desktop-portal theme.
QT_DROPPED = (
    "PySide6/*plugins/platforms/*qeglfs*", "PySide6/*plugins/platforms/*qlinuxfb*",
    "PySide6/*plugins/platforms/*qvnc*", "PySide6/*plugins/platforms/*qvkkhrdisplay*",
    "PySide6/*plugins/platforms/*qminimalegl*", "PySide6/*plugins/platforms/*qdirect2d*",
    "PySide6/*plugins/egldeviceintegrations/*", "PySide6/*plugins/generic/*",
    "PySide6/*plugins/platformthemes/*gtk3*",  # GTK's dialogs: the whole GTK stack, ~25 MB
    *(f"PySide6/*plugins/imageformats/*q{f}*" for f in ("gif", "jpeg", "tiff", "webp", "tga", "wbmp")),
    "PySide6/*translations/*",  # Qt's own dialogs in other languages; Polyphone is English-only
)
# Linux: this Python's libpython carries 17 MB of debug info. Nothing else is stripped:
# libraries that auditwheel patched (numpy.libs/, av.libs/...) break when stripped ("ELF
# load command address/offset not page-aligned"), and the others gain little.
LINUX_STRIP_DEBUG = ("libpython*",)
_SHARED_LIB = re.compile(r"^lib.+\.so(\.[0-9]+)*$")


@dataclass(frozen=True)
class Executable:
    name: str
    console: bool


@dataclass(frozen=True)
class Options:
    platform: str                     # "linux", "darwin" or "win32"
    app_name: str
    version: str
    executables: tuple[Executable, ...]
    icon: str | None
    datas: tuple[tuple[str, str], ...]
    binaries: tuple[tuple[str, str], ...]
    hiddenimports: tuple[str, ...]
    excludes: tuple[str, ...]
    runtime_hooks: tuple[str, ...]
    exclude_binaries: tuple[str, ...]  # name prefixes left out of COLLECT
    strip_debug: tuple[str, ...]       # name patterns of libraries to strip of debug info
    info_plist: dict = field(default_factory=dict)  # macOS only
    entitlements: str | None = None                 # macOS only

    @property
    def main(self) -> Executable:
        return self.executables[0]


def package_metadata() -> tuple[str, str]:
    """(APP_NAME, __version__) read from app/polyphone/__init__.py without importing it."""
    values = {}
    for node in ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("APP_NAME", "__version__"):
                    values[target.id] = node.value.value
    return values["APP_NAME"], values["__version__"]


def resource_datas() -> tuple[tuple[str, str], ...]:
    """Every file of resources/ but the README screenshots, at polyphone/resources/... ."""
    out = []
    for path in sorted(RESOURCES.rglob("*")):
        rel = path.relative_to(RESOURCES)
        if path.is_file() and rel.parts[0] != "screenshots":
            out.append((str(path), str(Path("polyphone", "resources", *rel.parts[:-1]))))
    return tuple(out)


def _package_root(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in this environment (build/setup.sh --build)")
    return Path(next(iter(spec.submodule_search_locations)))


def speech_datas() -> tuple[tuple[str, str], ...]:
    """espeak-ng's voices (espeakng_loader looks beside itself) and pocketsphinx's English model."""
    out = []
    for package, folder in (("espeakng_loader", "espeak-ng-data"), ("pocketsphinx", "model")):
        root = _package_root(package)
        files = [p for p in sorted((root / folder).rglob("*")) if p.is_file()]
        if not files:
            raise SystemExit(f"{package}'s {folder} is missing from {root}")
        out += [(str(p), str(Path(package, *p.relative_to(root).parts[:-1]))) for p in files]
    return tuple(out)


def espeak_binaries() -> tuple[tuple[str, str], ...]:
    """libespeak-ng from the espeakng-loader wheel, the file espeakng_loader loads beside itself."""
    try:
        import espeakng_loader
    except ImportError:
        raise SystemExit("espeakng-loader is not installed here (build/setup.sh --build)") from None
    lib = Path(espeakng_loader.get_library_path())
    if not lib.is_file():
        raise SystemExit(f"libespeak-ng is missing: {lib}")
    return ((str(lib), "espeakng_loader"),)


def livekit_binaries() -> tuple[tuple[str, str], ...]:
    """livekit's native library (libwebrtc's audio processing), where livekit looks for it."""
    import importlib.util

    spec = importlib.util.find_spec("livekit.rtc")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("livekit is not installed in this environment (pip install livekit)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources"
    libs = [p for p in folder.iterdir() if p.name.startswith(("liblivekit_ffi", "livekit_ffi"))
            and p.suffix in (".so", ".dylib", ".dll")]
    if not libs:
        raise SystemExit(f"livekit's native library is missing from {folder}")
    return tuple((str(p), "livekit/rtc/resources") for p in libs)


def portaudio_binaries(platform: str) -> tuple[tuple[str, str], ...]:
    """Linux: the system's libportaudio.so.2, at the bundle's top level.

    The sounddevice wheels for macOS and Windows carry PortAudio themselves
    (_sounddevice_data, collected by pyinstaller-hooks-contrib's hook).
    """
    if not platform.startswith("linux"):
        return ()
    name = ctypes.util.find_library("portaudio")
    if name is None:
        raise SystemExit("PortAudio is not installed, so it cannot be bundled: "
                         "sudo apt-get install libportaudio2")
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                   "/lib/x86_64-linux-gnu", "/usr/local/lib"):
        path = Path(folder, name)
        if path.exists():
            return ((str(path), "."),)  # by its soname, as the linker asks for it
    raise SystemExit(f"PortAudio ({name}) was found by the linker but not in a known folder")


def info_plist(app_name: str, version: str) -> dict:
    """The keys the macOS bundle's Info.plist gets beyond PyInstaller's own."""
    return {
        "CFBundleName": app_name,
        "CFBundleDisplayName": app_name,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        # Without it macOS mutes the microphone silently (no prompt, all-zero samples).
        "NSMicrophoneUsageDescription": MIC_USAGE,
        "NSHighResolutionCapable": True,
        "LSBackgroundOnly": False,  # a windowed app: Dock icon and menu bar
        "NSRequiresAquaSystemAppearance": False,  # follow the system's dark mode
        "LSMinimumSystemVersion": MACOS_MINIMUM,
        "LSApplicationCategoryType": "public.app-category.developer-tools",
    }


def options(platform: str | None = None) -> Options:
    platform = platform or sys.platform
    name, version = package_metadata()
    if platform == "win32":
        # The window app has no console; a console twin runs the command line and --self-test.
        executables = (Executable(name, console=False), Executable(f"{name.lower()}-cli", console=True))
        icon = str(RESOURCES / "icons" / "polyphone.ico")
    elif platform == "darwin":
        executables = (Executable(name, console=False),)
        icon = str(RESOURCES / "icons" / "polyphone.icns")
    else:
        executables = (Executable(name.lower(), console=True),)
        icon = None
    linux = platform.startswith("linux")
    return Options(
        platform=platform, app_name=name, version=version, executables=executables, icon=icon,
        datas=resource_datas() + speech_datas(),
        binaries=livekit_binaries() + espeak_binaries() + portaudio_binaries(platform),
        # the speech engines are imported by name (speech/transcribe.py ENGINES)
        hiddenimports=("livekit.rtc.resources", "polyphone.speech.sphinx", "polyphone.speech.whisper"),
        excludes=QT_EXCLUDES + OTHER_EXCLUDES,
        runtime_hooks=((str(HERE / "rth_portaudio.py"), str(HERE / "rth_system_env.py")) if linux else ()),
        exclude_binaries=LINUX_SYSTEM_LIBS if linux else (),
        strip_debug=LINUX_STRIP_DEBUG if linux else (),
        info_plist=info_plist(name, version) if platform == "darwin" else {},
        entitlements=str(HERE / "entitlements.plist") if platform == "darwin" else None,
    )


def dropped(dest: str) -> bool:
    """True for a file (its path inside the bundle) that QT_DROPPED leaves out."""
    dest = dest.replace("\\", "/")
    return any(fnmatch.fnmatch(dest, pattern) for pattern in QT_DROPPED)


# Loaded with ctypes at run time, so nothing links to them: roots of their own.
CTYPES_LIBRARIES = ("liblivekit_ffi", "libespeak-ng")


def prune_libraries(entries: list, imports_of) -> list:
    """Linux: the TOC entries (dest, src, kind) minus the shared libraries nothing needs.

    PyInstaller collects every plugin's libraries before the spec can leave a plugin out;
    this keeps the libraries reachable (imports_of(src) -> the names src links to) from
    everything that is not a plain `lib*.so*` library (extension modules, Qt plugins, the
    libraries the spec adds itself), and drops the rest.
    """
    explicit = {"libportaudio.so.2", "libpython"}
    def is_root(dest: str) -> bool:
        name = os.path.basename(dest)
        return (not _SHARED_LIB.match(name) or "/plugins/" in dest.replace("\\", "/")
                or name.startswith(tuple(explicit))
                or name.startswith(CTYPES_LIBRARIES))
    by_name = {os.path.basename(e[0]): e for e in entries}
    todo = [e for e in entries if is_root(e[0])]
    reached = {os.path.basename(e[0]) for e in todo}
    while todo:
        entry = todo.pop()
        for name in imports_of(entry[1]):
            if name in by_name and name not in reached:
                reached.add(name)
                todo.append(by_name[name])
    return [e for e in entries if os.path.basename(e[0]) in reached]


def strip_debug(entries: list, patterns: tuple[str, ...], workdir: str) -> list:
    """The TOC entries with those named by `patterns` replaced by copies without debug info."""
    import shutil
    import subprocess

    out = []
    for dest, src, kind in entries:
        if any(fnmatch.fnmatch(os.path.basename(dest), p) for p in patterns):
            copy = os.path.join(workdir, "stripped", dest)
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copyfile(src, copy)
            subprocess.run(["strip", "--strip-debug", copy], check=True)
            src = copy
        out.append((dest, src, kind))
    return out


def codesign_identity() -> str | None:
    """macOS: the signing identity from POLYPHONE_CODESIGN_IDENTITY (None: ad-hoc signature)."""
    return os.environ.get("POLYPHONE_CODESIGN_IDENTITY") or None


def windows_version_info(app_name: str, version: str, filename: str) -> str:
    """Windows: the executable's version resource (Properties → Details), as the text
    PyInstaller's EXE(version=FILE) reads (PyInstaller.utils.win32.versioninfo)."""
    numbers = tuple((list(map(int, version.split(".")[:3])) + [0, 0, 0, 0])[:4])
    strings = ",\n          ".join(f"StringStruct({k!r}, {v!r})" for k, v in (
        ("CompanyName", "PolyAI"), ("FileDescription", f"{app_name} softphone"),
        ("FileVersion", version), ("InternalName", app_name), ("OriginalFilename", filename),
        ("ProductName", app_name), ("ProductVersion", version)))
    return f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers={numbers}, prodvers={numbers}, mask=0x3f, flags=0x0,
                    OS=0x40004, fileType=0x1, subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
          {strings}])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
