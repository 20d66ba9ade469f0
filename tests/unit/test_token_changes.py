"""The profile dialog's keyring work as plain functions: what is looked up on open, and how
renamed, deleted, forgotten and typed tokens land on Save (keyring or this session only)."""

from __future__ import annotations

from helpers.stores import LockedStore
from polyphone.secrets import MemoryStore, SecretStoreError, token_key, turn_key
from polyphone.services.token_changes import TokenChange, apply_token_changes, lookup_all
from polyphone.services.tokens import TokenVault

TOKEN = "tok-secret-8c1e77"


Locked = LockedStore


def vault_with(**tokens: str) -> tuple[TokenVault, MemoryStore]:
    keyring = MemoryStore()
    for name, token in tokens.items():
        keyring.set(token_key(name), token)
    return TokenVault(keyring), keyring


def test_lookup_all_names_the_keyring_and_finds_each_token() -> None:
    vault, _ = vault_with(US="tok-us")
    vault.session.set(token_key("EU"), "tok-eu")
    view = lookup_all(vault, ["US", "EU", "None"])
    assert view.backend_name == MemoryStore().backend_name() and view.problem is None
    assert {n: (x.token, x.where) for n, x in view.lookups.items()} == {
        "US": ("tok-us", "keyring"), "EU": ("tok-eu", "session"), "None": (None, "")}


def test_lookup_all_reports_a_locked_keyring() -> None:
    view = lookup_all(TokenVault(Locked()), ["US"])
    assert view.backend_name == "none" and "locked" in str(view.problem)
    assert view.lookups["US"].token is None and view.lookups["US"].problem is not None


def test_rename_moves_the_token_and_delete_removes_it() -> None:
    vault, keyring = vault_with(US="tok-us", Old="tok-old")
    notices = apply_token_changes(vault, ["Old"], [TokenChange("US prod", original="US")])
    assert notices == []
    assert keyring.get(token_key("US prod")) == "tok-us" and keyring.get(token_key("US")) is None
    assert keyring.get(token_key("Old")) is None


def test_a_deleted_name_reused_by_another_profile_keeps_its_token() -> None:
    vault, keyring = vault_with(A="tok-a")
    assert apply_token_changes(vault, ["A"], [TokenChange("A", original=None)]) == []
    assert keyring.get(token_key("A")) == "tok-a"


def test_forget_deletes_and_a_typed_token_is_saved_trimmed() -> None:
    vault, keyring = vault_with(US="tok-us")
    apply_token_changes(vault, [], [TokenChange("US", "US", forget=True),
                                    TokenChange("New", None, token=f"  {TOKEN} ")])
    assert keyring.get(token_key("US")) is None and keyring.get(token_key("New")) == TOKEN


def test_the_local_profile_never_gets_a_token_but_turn_credentials_are_saved() -> None:
    vault, keyring = vault_with()
    apply_token_changes(vault, [], [TokenChange("Local", token=TOKEN, is_local=True),
                                    TokenChange("T", token=TOKEN, turn="turn-pw",
                                                turn_urls=("turn:a:3478", "turn:b:3478"))])
    assert keyring.get(token_key("Local")) is None
    assert keyring.get(turn_key("T", "turn:a:3478")) == "turn-pw"


def test_a_locked_keyring_keeps_tokens_for_this_session_and_says_so_without_them() -> None:
    vault = TokenVault(Locked())
    notices = apply_token_changes(vault, ["Gone"], [
        TokenChange("US", "US", token=TOKEN, turn="turn-pw", turn_urls=("turn:a:3478",)),
        TokenChange("EU", "EU", forget=True)])
    assert any("session only" in n and "“US”" in n for n in notices)
    assert any("TURN credential kept for this session only" in n for n in notices)
    assert all(TOKEN not in n and "turn-pw" not in n for n in notices)
    assert vault.get("US").token == TOKEN and vault.get("US").where == "session"
    assert vault.turn_credential("US", "turn:a:3478") == "turn-pw"


def test_a_token_that_cannot_be_one_is_refused_with_a_notice() -> None:
    vault, keyring = vault_with()
    notices = apply_token_changes(vault, [], [TokenChange("US", token="tok en-9f", turn="pw",
                                                          turn_urls=("turn:a:3478",))])
    assert notices == ["The token for “US” was not saved: The token contains spaces or control "
                       "characters. Paste exactly the token, on one line."]
    assert keyring.get(token_key("US")) is None and vault.session.get(token_key("US")) is None
    assert keyring.get(turn_key("US", "turn:a:3478")) is None   # as before: this profile stops here


def test_a_rename_on_a_locked_keyring_is_a_notice_not_an_error() -> None:
    class ReadOnly(MemoryStore):
        def set(self, key, value):
            raise SecretStoreError("The system keyring refused to save the token.", "Unlock it.")

    keyring = ReadOnly()
    keyring._data[token_key("US")] = TOKEN
    notices = apply_token_changes(TokenVault(keyring), [], [TokenChange("US 2", original="US")])
    assert notices == ["The system keyring refused to save the token. Unlock it."]
    assert keyring.get(token_key("US")) == TOKEN   # nothing lost
