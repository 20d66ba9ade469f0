"""`polyphone desktop install|uninstall`: Polyphone in (or out of) the Linux desktop's menu.

`install` writes the freedesktop entry (resources/polyphone.desktop, its `Exec` pointing
at this Polyphone: the frozen app, the pipx/venv script, or `python -m polyphone`) to
`$XDG_DATA_HOME/applications` and the app icon (hicolor PNG sizes and the SVG) to
`$XDG_DATA_HOME/icons/hicolor`, then refreshes the menu's caches where the tools for it
exist. `uninstall` removes exactly those files. No root needed; nothing else is touched.
macOS and Windows need neither: the .app bundle and the installer's shortcut carry the icon.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..paths import resource

APP_ID = "polyphone"
ENTRY = f"{APP_ID}.desktop"
_RESERVED = set(' \t\n"\'\\><~|&;$*?#()`')


def data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def launcher() -> list[str]:
    """The command that starts this Polyphone, as absolute paths."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    script = Path(sys.executable).parent / ("polyphone.exe" if os.name == "nt" else "polyphone")
    if script.is_file():  # pipx, a venv, or build/setup.sh's .venv
        return [str(script)]
    return [sys.executable, "-m", "polyphone"]


def exec_quote(arg: str) -> str:
    """One argument of a desktop entry's Exec key (Desktop Entry Specification, "Exec key")."""
    if arg and not (_RESERVED & set(arg)):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + escaped.replace("\\", "\\\\") + '"'  # the string value escapes backslashes again


def entry_text(command: list[str]) -> str:
    """resources/polyphone.desktop with Exec and TryExec set to `command`."""
    lines = []
    for line in resource(ENTRY).read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(exec_quote(a) for a in command)
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0]
        lines.append(line)
    return "\n".join(lines) + "\n"


def icon_files() -> list[tuple[Path, str]]:
    """(bundled file, path under icons/hicolor) for every size of the app icon."""
    svg = resource("icons/polyphone.svg")
    hicolor = svg.parent / "hicolor"
    pairs = [(png, png.relative_to(hicolor).as_posix())
             for png in sorted(hicolor.glob(f"*/apps/{APP_ID}.png"))]
    return pairs + [(svg, f"scalable/apps/{APP_ID}.svg")]


def installed_paths(home: Path) -> list[Path]:
    icons = home / "icons" / "hicolor"
    return [home / "applications" / ENTRY] + [icons / rel for _, rel in icon_files()]


def install(home: Path, command: list[str] | None = None) -> list[Path]:
    entry = home / "applications" / ENTRY
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(".tmp")
    tmp.write_text(entry_text(command or launcher()), encoding="utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, entry)
    written = [entry]
    for source, rel in icon_files():
        target = home / "icons" / "hicolor" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    _refresh(home)
    return written


def uninstall(home: Path) -> list[Path]:
    removed = []
    for path in installed_paths(home):
        if path.is_file():
            path.unlink()
            removed.append(path)
    _refresh(home)
    return removed


def _refresh(home: Path) -> None:
    """Best effort: menus that cache entries and icons see the change at once."""
    for tool, target in (("update-desktop-database", home / "applications"),
                         ("gtk-update-icon-cache", home / "icons" / "hicolor")):
        exe = shutil.which(tool)
        if exe and target.is_dir():
            args = [exe, "-q", str(target)] if tool.startswith("update") else [exe, "-q", "-t", str(target)]
            subprocess.run(args, capture_output=True, timeout=30, check=False)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("install", "uninstall"),
                   help="install: add Polyphone and its icon to your menu; uninstall: remove them")


def run(args: argparse.Namespace) -> int:
    if not sys.platform.startswith("linux"):
        print("Nothing to do: on macOS and Windows the app bundle or installer adds Polyphone "
              "to the system's menus.", file=sys.stderr)
        return 0
    home = data_home()
    try:
        if args.action == "install":
            paths = install(home)
            print(f"Polyphone is in your desktop's menu ({paths[0]}; runs {' '.join(launcher())}).")
        else:
            paths = uninstall(home)
            print(f"Removed {len(paths)} files from {home}." if paths else "Polyphone was not in the menu.")
    except OSError as exc:
        print(f"error: could not write under {home} ({exc.strerror or exc})", file=sys.stderr)
        return 1
    return 0
