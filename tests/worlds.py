"""The parties of a verdict test on a real stack, shared by the gateway's verification tests,
the offline verifier's tests and the verdict parity test."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from api.crypto import unseal
from api.models import Organization
from ledger.digital_link import DigitalLink
from ledger.tags import TagDomain, TagSigner
from tests.stack import GTIN, Stack

#: A GTIN with a valid check digit that only the rival holder enrolls.
OTHER_GTIN = "00012345600012"


class VerdictWorld:
    """Acme's batch L1 of `serials` on chain, a rival holder with its own GTIN, an officer."""

    def __init__(self, stack: Stack, serials: list[str]) -> None:
        self.stack = stack
        self.holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
        self.rival = stack.org("Rival Inc", "rights_holder", gtins=(OTHER_GTIN,))
        self.officer = stack.org("NL Customs", "customs")
        self.batch = stack.enroll(self.holder["apiKey"], serials=serials, expiry="281231")
        r = stack.client.post(
            "/v1/batches",
            json={"gtin": OTHER_GTIN, "lot": "R1", "serials": ["R-1"]},
            headers=stack.headers(self.rival["apiKey"]),
        )
        assert r.status_code == 201, r.text
        stack.sync()
        self.tags = {t["serial"]: t["uri"] for t in stack.tags(self.holder["apiKey"], self.bid)}
        self.domain = TagDomain(stack.registry.chain_id, stack.registry.address)

    @property
    def bid(self) -> str:
        return str(self.batch["batchId"])

    def sealed(self, org: dict[str, Any], field: str) -> bytes:
        """One of an organization's sealed secrets (`key_encrypted`, `signer_key_encrypted`)."""
        with Session(self.stack.gateway.engine) as session:
            row = session.exec(select(Organization).where(Organization.id == org["id"])).one()
            token = getattr(row, field)
            assert token is not None
            return unseal(self.stack.gateway.settings.secret_key, token)

    def tag(self, key: bytes, serial: str, lot: str = "L1", gtin: str = GTIN) -> str:
        """A tag URI signed with `key`, whoever's key it is."""
        signature = TagSigner(key, self.domain).sign(gtin, serial, lot)
        return DigitalLink(gtin, lot, serial, signature, "resolver.example").to_uri()

    def set_status(self, status: str, serial: str | None = None, bid: str | None = None) -> None:
        """Acme changes a status through the gateway; the change is on chain on return."""
        body: dict[str, Any] = {"status": status}
        if serial is not None:
            body["serial"] = serial
        r = self.stack.client.post(
            f"/v1/batches/{bid or self.bid}/status",
            json=body,
            headers=self.stack.headers(self.holder["apiKey"]),
        )
        assert r.status_code == 202 and r.json()["status"] == "done", r.text
