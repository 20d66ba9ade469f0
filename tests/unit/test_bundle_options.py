"""What build/polyphone.spec asks PyInstaller for, on each OS — including the two this machine
cannot build (macOS, Windows): the spec is run with PyInstaller's build steps recorded
instead of performed, and the macOS Info.plist is made from what it hands to BUNDLE the way
PyInstaller's BUNDLE makes it (its minimal keys, then the spec's info_plist on top)."""

from __future__ import annotations

import importlib.util
import plistlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "build" / "polyphone.spec"


def _load_bundle():
    spec = importlib.util.spec_from_file_location("bundle", ROOT / "build" / "pyinstaller" / "bundle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bundle"] = module  # as the spec imports it (dataclasses look their module up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


bundle = _load_bundle()


class Step:
    """Stands for one PyInstaller build step (Analysis, EXE, ...): keeps its arguments."""

    made: list[Step] = []

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs
        # PyInstaller's Analysis turns (source, folder) pairs into (destination, source, kind)
        self.binaries = [(str(Path(d) / Path(s).name), s, "BINARY") for s, d in kwargs.get("binaries", [])]
        self.datas = [(str(Path(d) / Path(s).name), s, "DATA") for s, d in kwargs.get("datas", [])]
        self.pure, self.scripts = [], []
        Step.made.append(self)


def run_spec(platform: str, tmp_path: Path, monkeypatch) -> dict[str, list[Step]]:
    """Runs the spec as if on `platform`; returns the steps it made, by kind."""
    kinds = {name: type(name, (Step,), {}) for name in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    Step.made = []
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(SPEC.read_text(), str(SPEC), "exec"),
         {"SPECPATH": str(SPEC.parent), "workpath": str(tmp_path), "__name__": "__spec__", **kinds})
    return {name: [s for s in Step.made if type(s).__name__ == name] for name in kinds}


def bundle_info_plist(step: Step, exe: Step) -> dict:
    """The Info.plist PyInstaller's BUNDLE.assemble writes (PyInstaller/building/osx.py)."""
    kw = step.kwargs
    name = Path(kw["name"]).stem
    plist = {"CFBundleDisplayName": name, "CFBundleName": name,
             "CFBundleIdentifier": kw["bundle_identifier"], "CFBundleExecutable": exe.kwargs["name"],
             "CFBundleIconFile": Path(kw["icon"]).name, "CFBundleInfoDictionaryVersion": "6.0",
             "CFBundlePackageType": "APPL", "CFBundleShortVersionString": str(kw["version"])}
    if exe.kwargs["console"]:
        plist["LSBackgroundOnly"] = True
    else:
        plist["NSHighResolutionCapable"] = True
    plist.update(kw["info_plist"])
    return plistlib.loads(plistlib.dumps(plist))


def test_name_and_version_come_from_the_package() -> None:
    from polyphone import APP_NAME, __version__

    assert bundle.package_metadata() == (APP_NAME, __version__)
    for platform in ("linux", "darwin", "win32"):
        opts = bundle.options(platform)
        assert (opts.app_name, opts.version) == (APP_NAME, __version__)


def test_macos_app_bundle_asks_for_the_microphone(tmp_path, monkeypatch) -> None:
    steps = run_spec("darwin", tmp_path, monkeypatch)
    (exe,), (app,) = steps["EXE"], steps["BUNDLE"]
    assert exe.kwargs["console"] is False and exe.kwargs["name"] == "Polyphone"
    assert app.kwargs["name"] == "Polyphone.app" and app.kwargs["icon"].endswith("polyphone.icns")
    plist = bundle_info_plist(app, exe)
    assert plist["NSMicrophoneUsageDescription"] == bundle.MIC_USAGE
    assert "microphone" in plist["NSMicrophoneUsageDescription"]
    assert plist["CFBundleIdentifier"] == "ai.poly.polyphone"
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == bundle.package_metadata()[1]
    assert plist["LSBackgroundOnly"] is False  # a real app: Dock icon and menu bar
    assert plist["CFBundleExecutable"] == "Polyphone" and plist["CFBundleIconFile"] == "polyphone.icns"
    # the hardened runtime denies the microphone without this entitlement
    entitlements = plistlib.loads(Path(exe.kwargs["entitlements_file"]).read_bytes())
    assert entitlements["com.apple.security.device.audio-input"] is True


def test_windows_app_has_no_console_and_a_console_twin(tmp_path, monkeypatch) -> None:
    steps = run_spec("win32", tmp_path, monkeypatch)
    exes = {s.kwargs["name"]: s.kwargs for s in steps["EXE"]}
    assert exes["Polyphone"]["console"] is False
    assert exes["polyphone-cli"]["console"] is True  # `polyphone-cli --self-test`, `call`, ...
    assert all(kw["icon"].endswith("polyphone.ico") for kw in exes.values())
    version_text = Path(exes["Polyphone"]["version"]).read_text(encoding="utf-8")
    assert "ProductVersion" in version_text and bundle.package_metadata()[1] in version_text
    assert "Polyphone.exe" in version_text
    assert steps["BUNDLE"] == []
    (collect,) = steps["COLLECT"]
    assert collect.kwargs["name"] == "Polyphone"


def test_linux_build_carries_portaudio_livekit_and_the_resources(tmp_path, monkeypatch) -> None:
    steps = run_spec("linux", tmp_path, monkeypatch)
    (analysis,), (exe,) = steps["Analysis"], steps["EXE"]
    assert exe.kwargs["name"] == "polyphone" and exe.kwargs["icon"] is None
    dests = {(Path(src).name, dest) for src, dest in analysis.kwargs["binaries"]}
    assert ("libportaudio.so.2", ".") in dests
    assert ("liblivekit_ffi.so", "livekit/rtc/resources") in dests
    datas = {(Path(dest) / Path(src).name).as_posix() for src, dest in analysis.kwargs["datas"]}
    for rel in ("sounds/greeting.wav", "sounds/caller-demo.wav", "styles/polyphone.qss",
                "polyphone.desktop", "icons/polyphone.svg", "icons/hicolor/48x48/apps/polyphone.png",
                "scripts/barge_in.toml", "scripts/booking.wav"):
        assert f"polyphone/resources/{rel}" in datas
    assert not any("screenshots" in d for d in datas)
    assert analysis.kwargs["runtime_hooks"] == [str(ROOT / "build" / "pyinstaller" / name)
                                                for name in ("rth_portaudio.py", "rth_system_env.py")]
    assert steps["BUNDLE"] == []


def test_unused_qt_is_excluded_and_what_the_app_uses_is_not() -> None:
    excludes = set(bundle.options("linux").excludes)
    assert {"PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtWebEngineCore",
            "tkinter"} <= excludes
    used = {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtSvg"}
    assert not used & excludes


@pytest.mark.parametrize("dest, left_out", [
    ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
    ("PySide6/Qt/plugins/platforms/libqeglfs.so", True),
    ("PySide6\\plugins\\imageformats\\qjpeg.dll", True),
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
    ("PySide6/plugins/platforms/qwindows.dll", False),
    ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", False),
    ("PySide6/Qt/plugins/iconengines/libqsvgicon.so", False),
    ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
])
def test_dropped_qt_plugins(dest: str, left_out: bool) -> None:
    assert bundle.dropped(dest) is left_out


def test_prune_keeps_what_is_reachable_and_drops_the_rest() -> None:
    needs = {
        "/x/QtGui.abi3.so": ["libQt6Gui.so.6"],
        "/x/libQt6Gui.so.6": ["libQt6Core.so.6"],
        "/x/libqxcb.so": ["libQt6XcbQpa.so.6"],
        "/x/libQt6XcbQpa.so.6": ["libxcb-cursor.so.0", "libQt6Gui.so.6"],
        "/x/libgtk-3.so.0": ["libcairo.so.2"],  # was needed only by the dropped GTK theme
    }
    entries = [("PySide6/QtGui.abi3.so", "/x/QtGui.abi3.so", "EXTENSION"),
               ("PySide6/Qt/plugins/platforms/libqxcb.so", "/x/libqxcb.so", "BINARY")]
    entries += [(name, f"/x/{name}", "BINARY") for name in (
        "libQt6Gui.so.6", "libQt6Core.so.6", "libQt6XcbQpa.so.6", "libxcb-cursor.so.0",
        "libgtk-3.so.0", "libcairo.so.2", "libportaudio.so.2")]
    # loaded by ctypes (livekit, espeakng_loader): nothing links to them, they stay
    entries += [("livekit/rtc/resources/liblivekit_ffi.so", "/x/liblivekit_ffi.so", "BINARY"),
                ("espeakng_loader/libespeak-ng.so", "/x/libespeak-ng.so", "BINARY")]
    kept = {Path(d).name for d, _, _ in bundle.prune_libraries(entries, lambda src: needs.get(src, []))}
    assert kept == {"QtGui.abi3.so", "libqxcb.so", "libQt6Gui.so.6", "libQt6Core.so.6",
                    "libQt6XcbQpa.so.6", "libxcb-cursor.so.0", "libportaudio.so.2", "liblivekit_ffi.so",
                    "libespeak-ng.so"}


def test_windows_version_info_is_what_pyinstaller_reads() -> None:
    """PyInstaller evaluates the file with its version-resource classes in scope."""
    made: dict[str, list] = {}

    def record(name):
        return lambda *args, **kwargs: made.setdefault(name, []).append((args, kwargs)) or name

    names = ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct",
             "VarFileInfo", "VarStruct")
    text = bundle.windows_version_info("Polyphone", "1.2.3", "Polyphone.exe")
    eval(text, {name: record(name) for name in names})  # noqa: S307 (our own generated text)
    assert made["FixedFileInfo"][0][1]["filevers"] == (1, 2, 3, 0)
    strings = dict(args for args, _ in made["StringStruct"])
    assert strings["ProductVersion"] == "1.2.3" and strings["OriginalFilename"] == "Polyphone.exe"
