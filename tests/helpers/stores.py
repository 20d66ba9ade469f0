"""Secret stores for tests of logic: a keyring that is locked (every call fails as a locked
Secret Service does). The real Secret Service is tests/helpers/keyring_daemon.py."""

from __future__ import annotations

from polyphone.secrets import MemoryStore, SecretStoreError


class LockedStore(MemoryStore):
    def _fail(self, *a):
        raise SecretStoreError("The system keyring is locked.", "Unlock it and try again.")
    get = set = delete = _fail

    def backend_name(self):
        return "none"
