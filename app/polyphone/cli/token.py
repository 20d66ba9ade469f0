"""`polyphone token set|clear|status --profile NAME`: tokens in the OS keyring only."""

from __future__ import annotations

import argparse
import getpass
import sys

from ..secrets import KeyringStore, SecretStoreError, token_key, validate_token


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("set", "clear", "status"))
    p.add_argument("--profile", required=True, help="profile name")


def _read_token() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Token (input hidden): ")
    return sys.stdin.readline()


def run(args: argparse.Namespace, store: KeyringStore | None = None) -> int:
    store = store or KeyringStore()
    key = token_key(args.profile)
    try:
        if args.action == "set":
            token = validate_token(_read_token())
            store.set(key, token)
            print(f"Token saved for profile {args.profile!r} in {store.backend_name()}.")
        elif args.action == "clear":
            removed = store.delete(key)
            print(f"Token for profile {args.profile!r} "
                  + ("removed." if removed else "was not set; nothing to remove."))
        else:
            has = store.get(key) is not None
            print(f"Profile {args.profile!r}: token {'set' if has else 'not set'} "
                  f"(keyring: {store.backend_name()}).")
            return 0 if has else 1
    except SecretStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6
    return 0
