"""Gateway tokens: the OS keyring, a session-only store when it fails, or POLYPHONE_TOKEN.

The session store is a `MemoryStore`: never written anywhere, gone at exit.
Keyring calls block (D-Bus, Keychain): every caller runs them in a worker thread
(`RequestBuilder`, and the window through the bridge's keyring commands).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..secrets import (
    KeyringStore,
    MemoryStore,
    SecretStore,
    SecretStoreError,
    token_key,
    turn_key,
    validate_token,
)

KEYRING, SESSION, ENVIRONMENT = "keyring", "session", "environment"


@dataclass(frozen=True)
class Lookup:
    token: str | None
    where: str = ""                        # keyring | session | environment | ""
    problem: SecretStoreError | None = None  # the keyring's failure, when it failed


@dataclass(frozen=True)
class Saved:
    where: str                             # keyring | session
    message: str                           # what happened, for the person


class TokenVault:
    def __init__(self, keyring: SecretStore | None = None, session: MemoryStore | None = None) -> None:
        self.keyring = keyring if keyring is not None else KeyringStore()
        self.session = session if session is not None else MemoryStore()

    def backend_name(self) -> str:
        """The keyring's name ("SecretService Keyring", ...) or "none"."""
        try:
            return self.keyring.backend_name()
        except Exception:
            return "none"

    def probe(self) -> SecretStoreError | None:
        """None when the keyring answers; otherwise its failure, in words."""
        try:
            self.keyring.get(token_key("polyphone keyring probe"))
        except SecretStoreError as exc:
            return exc
        return None

    @staticmethod
    def from_environment() -> str | None:
        """POLYPHONE_TOKEN: a session-only token that is never written anywhere."""
        return os.environ.get("POLYPHONE_TOKEN", "").strip() or None

    def get(self, profile: str, *, prefer_environment: bool = False) -> Lookup:
        """The session token first (set because the keyring failed), then the keyring, then
        POLYPHONE_TOKEN; with `prefer_environment` (the command line), POLYPHONE_TOKEN first."""
        env = self.from_environment()
        if prefer_environment and env:
            return Lookup(env, ENVIRONMENT)
        session = self.session.get(token_key(profile))
        if session:
            return Lookup(session, SESSION)
        problem = None
        try:
            token = self.keyring.get(token_key(profile))
            if token:
                return Lookup(token, KEYRING)
        except SecretStoreError as exc:
            problem = exc
        if env:
            return Lookup(env, ENVIRONMENT, problem)
        return Lookup(None, "", problem)

    def save(self, profile: str, token: str) -> Saved:
        """Raises SecretStoreError only for a token that cannot be one."""
        token = validate_token(token)
        try:
            self.keyring.set(token_key(profile), token)
        except SecretStoreError as exc:
            self.session.set(token_key(profile), token)
            return Saved(SESSION, f"Kept for this session only, not saved: {exc}")
        self.session.delete(token_key(profile))
        return Saved(KEYRING, f"Saved in the system keyring ({self.backend_name()}).")

    def delete(self, profile: str) -> None:
        self.session.delete(token_key(profile))
        try:
            self.keyring.delete(token_key(profile))
        except SecretStoreError:
            pass

    def rename(self, old: str, new: str) -> None:
        found = self.get(old)
        if found.token and found.where in (KEYRING, SESSION):
            if found.where == KEYRING:
                self.keyring.set(token_key(new), found.token)
            else:
                self.session.set(token_key(new), found.token)
            self.delete(old)

    def turn_credential(self, profile: str, url: str) -> str | None:
        key = turn_key(profile, url)
        session = self.session.get(key)
        if session:
            return session
        try:
            return self.keyring.get(key)
        except SecretStoreError:
            return None

    def set_turn_credential(self, profile: str, url: str, credential: str) -> Saved:
        key = turn_key(profile, url)
        try:
            self.keyring.set(key, credential)
        except SecretStoreError as exc:
            self.session.set(key, credential)
            return Saved(SESSION, f"TURN credential kept for this session only: {exc}")
        return Saved(KEYRING, "TURN credential saved in the system keyring.")
