"""Salted commitments: how personal data is kept out of the append-only custody log.

The log holds SHA-256(salt ‖ canonical JSON(value)) for a party's name and address and for an
action's free-text parameters; the value and its 32-byte random salt stay in erasable rows.
Anyone holding both can show the log committed to exactly that value; once both are erased
the commitment reveals nothing (the salt makes guessing a name useless), and since the log
never held the value, every inclusion proof and checkpoint still verifies.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from ledger.canonical import canonical_json


def new_salt() -> str:
    return secrets.token_hex(32)


def commit(salt: str, value: Any) -> str:
    return "0x" + hashlib.sha256(bytes.fromhex(salt) + canonical_json(value)).hexdigest()


def opens(commitment: str, salt: str, value: Any) -> bool:
    """Whether `value` under `salt` is what `commitment` committed to."""
    return commit(salt, value) == commitment
