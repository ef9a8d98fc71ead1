"""Account keys in encrypted keystore files (Web3 Secret Storage, scrypt + AES-128-CTR).

A private key never touches the disk in plain text: it is generated in memory, encrypted with
the user's password and written with mode 0600. Files are named after the account's role
(`admin.json`, `holder.json`, `signer.json`), which is what a CLI user types.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.errors import InvalidInput, KeystoreError
from ledger.tags import to_checksum_address

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def keystore_path(directory: Path, name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return directory / f"{name}.json"


def create_keystore(
    directory: Path,
    name: str,
    password: str,
    private_key: bytes | None = None,
    scrypt_n: int = 2**16,
) -> str:
    """Encrypt a new (or given) key into `directory/name.json`; returns its address.

    Refuses to overwrite an existing file: losing a rights holder's key loses its batches.
    """
    if not password:
        raise KeystoreError("a keystore password must not be empty")
    path = keystore_path(directory, name)
    if path.exists():
        raise KeystoreError(f"keystore {path} already exists; choose another name")
    key = private_key if private_key is not None else secrets.token_bytes(32)
    encrypted = Account.encrypt(key, password, kdf="scrypt", iterations=scrypt_n)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(encrypted, handle)
    tmp.replace(path)
    return str(Account.from_key(key).address)


def load_account(directory: Path, name: str, password: str) -> LocalAccount:
    """Decrypt `directory/name.json`; raises KeystoreError on a missing file or wrong password."""
    path = keystore_path(directory, name)
    try:
        encrypted = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeystoreError(
            f"no keystore {path}: create it with `borderledger keys new {name}`"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise KeystoreError(f"keystore {path} is unreadable: {exc}") from None
    try:
        key = Account.decrypt(encrypted, password)
    except ValueError:
        raise KeystoreError(f"wrong password for keystore {path}") from None
    account: LocalAccount = Account.from_key(key)
    return account


def keystore_address(directory: Path, name: str) -> str:
    """The address stored (unencrypted) in a keystore file, without needing the password."""
    path = keystore_path(directory, name)
    try:
        address = json.loads(path.read_text())["address"]
    except FileNotFoundError:
        raise KeystoreError(f"no keystore {path}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise KeystoreError(f"keystore {path} is unreadable: {exc}") from None
    return to_checksum_address(str(address))
