"""Foundry's `cast wallet sign --data` signs tags that we and the registry accept."""

from __future__ import annotations

import json
import subprocess

from chain.node import dev_private_key
from ledger.config import PROJECT_ROOT
from ledger.tags import EIP712_TYPES, TagDomain, TagSigner, recover_signer, tag_digest
from tests.conftest import Chain

CAST = PROJECT_ROOT / "node_modules" / ".bin" / "cast"


def _cast_sign(key: bytes, domain: TagDomain, gtin: str, serial: str, lot: str) -> bytes:
    typed = {
        "types": EIP712_TYPES,
        "primaryType": "Tag",
        "domain": domain.as_json(),
        "message": {"gtin": gtin, "serial": serial, "lot": lot},
    }
    proc = subprocess.run(
        [
            str(CAST),
            "wallet",
            "sign",
            "--data",
            "--private-key",
            "0x" + key.hex(),
            json.dumps(typed),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return bytes.fromhex(proc.stdout.strip().removeprefix("0x"))


def test_cast_signature_matches_ours_byte_for_byte() -> None:
    key = dev_private_key(7)
    domain = TagDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    ours = TagSigner(key, domain)
    for gtin, serial, lot in [("09506000134352", "SN/1%", "L 1"), ("00000000000017", '"q"', "ß")]:
        theirs = _cast_sign(key, domain, gtin, serial, lot)
        assert theirs == ours.sign(gtin, serial, lot)
        assert (
            recover_signer(tag_digest(domain.separator, gtin, serial, lot), theirs) == ours.address
        )


def test_registry_accepts_a_cast_signed_tag(chain: Chain) -> None:
    chain.registry.accredit_rights_holder(chain.holder.address, "Acme", "T")
    chain.registry.bind_gtin("09506000134352", chain.holder.address)
    holder = chain.client(chain.holder)
    holder.add_signer(chain.tag_signer().address)
    holder.register_batch("09506000134352", "L1", b"\x11" * 32, 1, b"\x00" * 32)
    signature = _cast_sign(chain.signer_key, chain.domain, "09506000134352", "SN1", "L1")
    check = chain.registry.check_tag("09506000134352", "SN1", "L1", signature)
    assert check.signature_valid
    assert check.signer == chain.tag_signer().address
