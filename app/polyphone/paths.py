"""Where Polyphone's bundled resources (sounds, icons, styles) live.

From a source checkout they are in the repository's top-level `resources/`
(app/polyphone/../../resources); in an installed wheel the build force-includes
that folder as `polyphone/resources` inside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent

# Searched in order: the installed wheel's copy first, then the source checkout's.
RESOURCE_ROOTS: tuple[Path, ...] = (
    _PACKAGE_DIR / "resources",
    _PACKAGE_DIR.parent.parent / "resources",
)


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
