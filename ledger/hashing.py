"""Keccak-256 and the few ABI encodings the hot paths need, without web3.

`safe-pysha3` hashes about four times faster than pycryptodome (eth-hash's usual backend);
enrollment of a million items spends most of its time here and in signing, so it is worth a
dependency. The ABI encoders cover only the shapes BorderLedger hashes (strings and bytes32),
which keeps them fast and lets `tests/ledger/test_hashing.py` check them against eth-abi.
"""

from __future__ import annotations

try:
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - safe-pysha3 is a declared dependency
    from Crypto.Hash import keccak as _pycryptodome

    def keccak256(data: bytes) -> bytes:
        digest: bytes = _pycryptodome.new(digest_bits=256, data=data).digest()
        return digest

else:

    def keccak256(data: bytes) -> bytes:
        """Keccak-256 (Ethereum's, not NIST SHA3-256) of `data`."""
        digest: bytes = _keccak_256(data).digest()
        return digest


_WORD = 32


def _word(n: int) -> bytes:
    return n.to_bytes(_WORD, "big")


def _padded(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % _WORD)


def abi_encode_strings_and_words(values: list[str | bytes]) -> bytes:
    """`abi.encode` of a tuple whose members are `string` (str) or `bytes32` (32-byte bytes)."""
    head: list[bytes] = []
    tail: list[bytes] = []
    offset = _WORD * len(values)
    for value in values:
        if isinstance(value, str):
            raw = value.encode()
            head.append(_word(offset))
            part = _word(len(raw)) + _padded(raw)
            tail.append(part)
            offset += len(part)
        else:
            if len(value) != _WORD:
                raise ValueError(f"bytes32 value must be 32 bytes, got {len(value)}")
            head.append(value)
    return b"".join(head) + b"".join(tail)
