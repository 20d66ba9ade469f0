"""Icons from resources/icons (SVG), cached; an empty icon when one is missing."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon

from ..paths import resource


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    try:
        return QIcon(str(resource(f"icons/{name}")))
    except FileNotFoundError:
        return QIcon()
