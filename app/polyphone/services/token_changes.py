"""What the profile dialog asks of the keyring, as plain blocking functions (no Qt).

Every keyring call may block (D-Bus, Keychain), so the dialog runs these in a
worker thread: `lookup_all` when it opens (what to show), `apply_token_changes`
on Save (renamed and deleted profiles' tokens follow, typed tokens are stored).
The notice lines returned are for the person and never contain a token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..secrets import SecretStoreError
from .tokens import SESSION, Lookup, TokenVault


@dataclass(frozen=True)
class TokenChange:
    """One profile as the dialog leaves it."""

    name: str                          # the name it is saved under
    original: str | None = None        # the name on disk; None for a new profile
    token: str = ""                    # typed, to save
    turn: str = ""                     # TURN credential typed, to save
    forget: bool = False               # forget the stored token
    is_local: bool = False             # the local demo agent: never a token
    turn_urls: tuple[str, ...] = ()    # first URL of each ICE server with a username


class KeyringView(NamedTuple):
    """What the dialog shows on open."""

    backend_name: str                  # "SecretService Keyring", ... or "none"
    problem: SecretStoreError | None   # the keyring's failure, None when it answers
    lookups: dict[str, Lookup]         # profile name -> where its token is


def lookup_all(vault: TokenVault, names: Iterable[str]) -> KeyringView:
    """Probes the keyring, names it, and looks up each profile's token (blocking)."""
    problem = vault.probe()
    backend = vault.backend_name() if problem is None else "none"
    return KeyringView(backend, problem, {name: vault.get(name) for name in names})


def apply_token_changes(vault: TokenVault, deleted: Iterable[str],
                        entries: Iterable[TokenChange]) -> list[str]:
    """Deletes, renames, forgets and saves tokens (blocking); returns notice lines."""
    entries = list(entries)
    notices: list[str] = []
    names = {e.name for e in entries}

    def quietly(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except SecretStoreError as exc:
            notices.append(str(exc))

    for name in deleted:
        if name not in names:
            quietly(vault.delete, name)
    for e in entries:
        if e.original and e.original != e.name and e.original not in names:
            quietly(vault.rename, e.original, e.name)
        if e.forget:
            quietly(vault.delete, e.name)
        notices += _save_secrets(vault, e)
    return notices


def _save_secrets(vault: TokenVault, e: TokenChange) -> list[str]:
    notices: list[str] = []
    if e.token and not e.is_local:
        try:
            saved = vault.save(e.name, e.token)
        except SecretStoreError as exc:
            return [f"The token for “{e.name}” was not saved: {exc}"]
        if saved.where == SESSION:
            notices.append(f"“{e.name}”: {saved.message}")
    if e.turn and e.turn_urls:
        saved = vault.set_turn_credential(e.name, e.turn_urls[0], e.turn)
        if saved.where == SESSION:
            notices.append(f"“{e.name}”: {saved.message}")
    return notices
