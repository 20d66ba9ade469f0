"""The keyring's failure modes, with in-memory keyring backends (the real Secret Service ones
are in tests/integration/test_token_keyring.py): each gives a sentence and loses nothing."""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from polyphone.secrets import WINDOWS_MAX_BYTES, KeyringStore, SecretStoreError

SAVED_TOKEN = "saved-token-5e0c41aa"


class WinVaultKeyring(KeyringBackend):
    """Named like keyring's Windows backend: only the name matters to the size check."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        self.items.pop((service, username), None)


@pytest.fixture
def backend():
    previous = keyring.get_keyring()
    made = WinVaultKeyring()
    keyring.set_keyring(made)
    yield made
    keyring.set_keyring(previous)


def test_a_token_too_long_for_windows_is_refused_and_the_saved_one_kept(backend) -> None:
    store = KeyringStore()
    store.set("profile:Work", SAVED_TOKEN)
    too_long = "x" * (WINDOWS_MAX_BYTES // 2 + 1)  # UTF-16: 2 bytes a character
    with pytest.raises(SecretStoreError) as caught:
        store.set("profile:Work", too_long)
    assert "too long for the Windows Credential Manager" in str(caught.value)
    assert "old token is kept" in caught.value.action
    assert too_long not in str(caught.value) + caught.value.action
    assert store.get("profile:Work") == SAVED_TOKEN
    store.set("profile:Work", "y" * (WINDOWS_MAX_BYTES // 2))  # the limit itself fits
    assert store.get("profile:Work") == "y" * (WINDOWS_MAX_BYTES // 2)


def test_no_keyring_backend_says_so_and_what_to_do() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = KeyringStore()
        for action in (lambda: store.get("k"), lambda: store.set("k", SAVED_TOKEN)):
            with pytest.raises(SecretStoreError) as caught:
                action()
            assert "keyring" in str(caught.value).lower()
            assert "POLYPHONE_TOKEN" in str(caught.value) + caught.value.action
        assert store.backend_name() == "none"
    finally:
        keyring.set_keyring(previous)
