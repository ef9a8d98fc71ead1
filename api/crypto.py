"""Encryption at rest of the secrets the gateway must hold (batch secrets, organization keys).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived from the
gateway's `secret_key` setting with HKDF, so the setting can be any string.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.errors import KeystoreError


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"borderledger-at-rest"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, data: bytes) -> str:
    return _fernet(secret_key).encrypt(data).decode()


def unseal(secret_key: str, token: str) -> bytes:
    try:
        return _fernet(secret_key).decrypt(token.encode())
    except InvalidToken:
        raise KeystoreError(
            "a stored secret does not decrypt: wrong BORDERLEDGER_SECRET_KEY?"
        ) from None
