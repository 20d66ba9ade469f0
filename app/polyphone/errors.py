"""The one shape of a failure a person reads: what happened, and what to do about it."""

from __future__ import annotations


class UserFacingError(Exception):
    """`message` says what happened (no secrets); `action` what the person can do."""

    def __init__(self, message: str, action: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.action = action

    def __str__(self) -> str:
        return f"{self.message} {self.action}".strip()
