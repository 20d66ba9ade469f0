"""Where Polyphone's bundled resources (sounds, icons, styles) live.

From a source checkout they are in the repository's top-level `resources/`
(app/polyphone/../../resources); in an installed wheel the build force-includes
that folder as `polyphone/resources` inside the package; in the frozen app
(PyInstaller, build/polyphone.spec) they are in `polyphone/resources` under
`sys._MEIPASS`, the bundle's own folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
