"""Tag signatures: EIP-712 over `Tag(string gtin,string serial,string lot)`.

Domain: `{name: "BorderLedger", version: "1", chainId, verifyingContract: registry}`. A
signature made by ethers' `signTypedData` or `cast wallet sign --data` over these types
verifies here and in the registry's `checkTag`, and ours verify there
(`tests/ledger/test_crosscheck_js.py`).

The struct is hashed by hand rather than with eth-account's `encode_typed_data` (about 0.2 ms
each in pure Python): enrollment signs a million tags and this is its hot path. Signatures are
65 bytes `r || s || v` with `v` in {27, 28} and low `s`; high-`s` (malleable) signatures are
refused, as OpenZeppelin's ECDSA refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from ledger.errors import InvalidSignature
from ledger.hashing import keccak256

DOMAIN_NAME = "BorderLedger"
DOMAIN_VERSION = "1"
TAG_TYPE = "Tag(string gtin,string serial,string lot)"
TAG_TYPEHASH = keccak256(TAG_TYPE.encode())
_DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
#: secp256k1 group order, and the half of it above which `s` is malleable.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2

EIP712_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Tag": [
        {"name": "gtin", "type": "string"},
        {"name": "serial", "type": "string"},
        {"name": "lot", "type": "string"},
    ],
}


def _address_bytes(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"address {address!r} is not 20 bytes")
    return raw


@dataclass(frozen=True, slots=True)
class TagDomain:
    """The EIP-712 domain of one registry deployment."""

    chain_id: int
    registry: str

    @property
    def separator(self) -> bytes:
        return keccak256(
            _DOMAIN_TYPEHASH
            + keccak256(DOMAIN_NAME.encode())
            + keccak256(DOMAIN_VERSION.encode())
            + self.chain_id.to_bytes(32, "big")
            + _address_bytes(self.registry).rjust(32, b"\x00")
        )

    def as_json(self) -> dict[str, object]:
        """The domain as EIP-712 JSON (what ethers and `cast wallet sign --data` take)."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.registry,
        }


def tag_struct_hash(gtin: str, serial: str, lot: str) -> bytes:
    return keccak256(
        TAG_TYPEHASH
        + keccak256(gtin.encode())
        + keccak256(serial.encode())
        + keccak256(lot.encode())
    )


def tag_digest(domain_separator: bytes, gtin: str, serial: str, lot: str) -> bytes:
    """The 32-byte EIP-712 digest a signer key signs for one tag."""
    return keccak256(b"\x19\x01" + domain_separator + tag_struct_hash(gtin, serial, lot))


class TagSigner:
    """Signs tags with one secp256k1 key; cheap to create in each worker process."""

    def __init__(self, private_key: bytes, domain: TagDomain) -> None:
        self._key = coincurve.PrivateKey(private_key)
        self._separator = domain.separator
        self.address = address_of(self._key.public_key)

    def sign(self, gtin: str, serial: str, lot: str) -> bytes:
        """65-byte `r || s || v` (v = 27/28); coincurve produces low-s, RFC 6979 signatures."""
        digest = tag_digest(self._separator, gtin, serial, lot)
        sig = self._key.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes([sig[64] + 27])


def address_of(public_key: coincurve.PublicKey) -> str:
    """Checksummed Ethereum address of a public key."""
    raw = keccak256(public_key.format(compressed=False)[1:])[-20:].hex()
    return to_checksum_address(raw)


def to_checksum_address(address: str) -> str:
    """EIP-55 checksum of a hex address (without web3, for the domain layer)."""
    raw = address.lower().removeprefix("0x")
    if len(raw) != 40 or any(c not in "0123456789abcdef" for c in raw):
        raise ValueError(f"{address!r} is not a 20-byte hex address")
    digest = keccak256(raw.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(raw))


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The address that signed `digest`; raises `InvalidSignature` naming what is wrong.

    Refuses what OpenZeppelin's ECDSA.recover refuses, so the two never disagree: length
    other than 65, `v` not 27/28 (0/1 included), `s` above n/2 (malleable), r or s of zero.
    """
    if len(signature) != 65:
        raise InvalidSignature(f"signature is {len(signature)} bytes; expected 65")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise InvalidSignature(f"signature v is {signature[64]}; expected 27 or 28")
    if not 0 < r < SECP256K1_N or s == 0:
        raise InvalidSignature("signature r or s is out of range")
    if s > SECP256K1_HALF_N:
        raise InvalidSignature("signature s is in the upper half of the curve order (malleable)")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except ValueError as exc:
        raise InvalidSignature(f"signature does not recover to a public key: {exc}") from None
    return address_of(public_key)
