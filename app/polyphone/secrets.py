"""Secrets (gateway tokens, TURN credentials) live only in the OS keyring.

`KeyringStore` wraps the `keyring` library (Secret Service, Keychain, Windows
Credential Manager) and turns every failure into a `SecretStoreError` whose
message says what happened and what to do. `MemoryStore` holds session-only
secrets (never written anywhere) and serves tests of logic.
"""

from __future__ import annotations

from typing import Protocol

from .errors import UserFacingError

SERVICE = "polyphone"
WINDOWS_MAX_BYTES = 2560  # CRED_MAX_CREDENTIAL_BLOB_SIZE: UTF-16 bytes


class SecretStoreError(UserFacingError):
    """The keyring cannot be used (what happened, what to do)."""


class SecretStore(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...
    def delete(self, key: str) -> bool: ...
    def backend_name(self) -> str: ...


def token_key(profile: str) -> str:
    return f"token:{profile}"


def turn_key(profile: str, url: str) -> str:
    return f"turn:{profile}:{url}"


class MemoryStore:
    """Session-only secrets: gone when the process exits."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def set(self, key: str, value: str) -> None:
        self._data[key] = value

    def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    def backend_name(self) -> str:
        return "this session only (not saved)"


_NO_KEYRING = SecretStoreError(
    "No system keyring is available, so the token cannot be saved.",
    "Install and unlock your desktop's keyring (GNOME Keyring or KWallet on Linux), "
    "or use a session-only token (POLYPHONE_TOKEN) that is never written anywhere.")
_LOCKED = SecretStoreError(
    "The system keyring is locked.",
    "Unlock it (log in to your desktop session or open your keyring manager) and try again.")


class KeyringStore:
    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def _backend(self):
        import keyring
        from keyring.backends import fail

        try:
            backend = keyring.get_keyring()
        except Exception:
            raise _NO_KEYRING from None
        if isinstance(backend, fail.Keyring):
            raise _NO_KEYRING
        module = type(backend).__module__
        if module.startswith("keyrings.alt") or "PlaintextKeyring" in type(backend).__name__:
            raise SecretStoreError(
                "The only keyring available stores secrets unencrypted on disk; Polyphone will "
                "not put tokens there.",
                "Install and unlock your desktop's keyring, or use a session-only token.")
        return backend

    def backend_name(self) -> str:
        try:
            backend = self._backend()
        except SecretStoreError:
            return "none"
        return getattr(backend, "name", type(backend).__name__)

    def _call(self, what: str, fn, *args):
        from keyring import errors

        try:
            return fn(*args)
        except errors.KeyringLocked:
            raise _LOCKED from None
        except errors.NoKeyringError:
            raise _NO_KEYRING from None
        except errors.InitError as exc:
            if "dismiss" in str(exc).lower() or "lock" in str(exc).lower():
                raise _LOCKED from None
            raise SecretStoreError(f"The system keyring could not be opened to {what}.",
                                   "Check that your keyring service is running and unlocked.") from None
        except errors.KeyringError:
            raise SecretStoreError(f"The system keyring refused to {what}.",
                                   "Check that it is unlocked and try again.") from None
        except Exception as exc:  # D-Bus errors surface as many types
            raise SecretStoreError(
                f"The system keyring failed to {what} ({type(exc).__name__}).",
                "Check that your keyring service is running and unlocked.") from None

    def get(self, key: str) -> str | None:
        backend = self._backend()
        return self._call("read the token", backend.get_password, self.service, key)

    def set(self, key: str, value: str) -> None:
        backend = self._backend()
        name = type(backend).__name__
        if "Win" in name and len(value.encode("utf-16-le")) > WINDOWS_MAX_BYTES:
            raise SecretStoreError(
                f"This token is too long for the Windows Credential Manager "
                f"(at most {WINDOWS_MAX_BYTES // 2} characters).",
                "Check you pasted only the token; nothing was saved and the old token is kept.")
        self._call("save the token", backend.set_password, self.service, key, value)

    def delete(self, key: str) -> bool:
        from keyring import errors

        backend = self._backend()

        def delete() -> bool:
            try:
                backend.delete_password(self.service, key)
            except errors.PasswordDeleteError:
                return False  # nothing was stored
            return True

        return self._call("delete the token", delete)


def validate_token(token: str) -> str:
    """A pasted token, trimmed; refuses what cannot be a token (never echoes it)."""
    token = token.strip()
    if not token:
        raise SecretStoreError("The token is empty.", "Paste the token from PolyAI Agent Studio.")
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise SecretStoreError("The token contains spaces or control characters.",
                               "Paste exactly the token, on one line.")
    if len(token) > 8192:
        raise SecretStoreError("The token is implausibly long (over 8192 characters).",
                               "Check you pasted only the token.")
    return token
