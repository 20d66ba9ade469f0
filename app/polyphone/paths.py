"""Where Polyphone's bundled resources (sounds, icons, styles) live; private files and folders.

From a source checkout they are in the repository's top-level `resources/`
(app/polyphone/../../resources); in an installed wheel the build force-includes
that folder as `polyphone/resources` inside the package; in the frozen app
(PyInstaller, build/polyphone.spec) they are in `polyphone/resources` under
`sys._MEIPASS`, the bundle's own folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

_PACKAGE_DIR = Path(__file__).resolve().parent


def _roots() -> tuple[Path, ...]:
    roots = [_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent.parent / "resources"]
    bundle = getattr(sys, "_MEIPASS", None)  # set only in the frozen app
    if bundle:
        roots.insert(0, Path(bundle) / "polyphone" / "resources")
    return tuple(dict.fromkeys(roots))  # in order, each once


# Searched in order: the frozen app's copy, the installed wheel's, then the source checkout's.
RESOURCE_ROOTS: tuple[Path, ...] = _roots()


def resource(relpath: str) -> Path:
    """The path of a bundled resource, e.g. `resource("sounds/greeting.wav")`.

    Raises FileNotFoundError naming every place looked in when it is not there.
    """
    rel = Path(relpath)
    if rel.is_absolute() or ".." in rel.parts:
        raise FileNotFoundError(f"resource path must be relative and inside resources/: {relpath!r}")
    for root in RESOURCE_ROOTS:
        candidate = root / rel
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(root) for root in RESOURCE_ROOTS)
    raise FileNotFoundError(
        f"Polyphone resource {relpath!r} not found (looked in: {looked}); "
        "the installation may be incomplete"
    )


# --- files that hold the user's data: readable by the user only ------------------------

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: str | os.PathLike) -> Path:
    """Make a folder (and missing parents) that only the user can open; returns it.

    The folders it creates get mode 0700; a folder that already exists is left as it is
    (it may be one the user chose and shares on purpose).
    """
    path = Path(path)
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    for made in missing:  # mkdir's mode gives way to the umask, and parents get the default
        try:
            os.chmod(made, PRIVATE_DIR_MODE)
        except OSError:
            pass
    return path


def open_private(path: str | os.PathLike) -> BinaryIO:
    """Open a file for binary writing (created or truncated) that only the user can read."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_FILE_MODE)  # an existing file keeps its mode on O_CREAT
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
