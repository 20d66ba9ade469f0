"""One call to give a fresh widget its accessible name (and description, tooltip, object name)."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)


def named(widget: W, name: str, description: str = "", tip: str = "", object_name: str = "") -> W:
    """Set what screen readers (and tests) find `widget` by; empty arguments are left unset."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    if tip:
        widget.setToolTip(tip)
    if object_name:
        widget.setObjectName(object_name)
    return widget
