"""Keep secrets out of everything a person can see or copy (event log, history, banners)."""

from __future__ import annotations

import re

HIDDEN = "[hidden]"
MIN_SECRET = 8

# Shapes a secret takes in text whatever its value: JSON fields, query strings, headers.
_PATTERNS = (
    re.compile(r'("(?:authToken|token|credential|password)"\s*:\s*")[^"]*(")', re.I),
    re.compile(r"((?:[?&]|\b)(?:token|auth_token|authToken|credential)=)[^&\s\"']+", re.I),
    re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.I),
)


class Redactor:
    """Replaces every known secret, and anything shaped like one, with `[hidden]`."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        """Remember a secret to hide. Shorter than MIN_SECRET it is not a real token, and hiding
        it would mangle ordinary words (a test token "wrong" turned "wrong or expired" into
        "[hidden] or expired")."""
        if secret and len(secret) >= MIN_SECRET:
            self._secrets.add(secret)

    def discard(self, secret: str | None) -> None:
        self._secrets.discard(secret or "")

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, HIDDEN)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + HIDDEN + (m.group(2) if m.lastindex == 2 else ""),
                               text)
        return text
