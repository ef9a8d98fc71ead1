"""The gateway after `borderledger deploy --upgrade` (issue 12): batches registered on the
registry an upgrade replaced (contracts/legacy/BorderLedgerRegistryV1.sol) still verify
through the gateway — `/v1/verify` typed and by tag, the GS1 route, the trust bundle and the
offline scanner agree — with their original block and time and the registry that holds them;
a status changed on the old registry after the upgrade is followed; new batches go to the
new registry only.

The chain starts with the old contract and a gateway on it (a real one: organizations,
accreditation and enrollment through its outbox, as before the upgrade); the new registry is
then deployed and a gateway on the same database is given both addresses."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.crypto import unseal
from api.db import create_schema, make_engine
from api.gateway import Gateway
from api.indexer import Indexer, rebuild_index
from api.main import create_app
from api.models import ChainLog, IndexedBatch, IndexerState, Organization
from api.orgs import create_dev_admin
from chain.contract import RegistryClient, connect, deploy
from chain.node import LocalNode, dev_private_key, rpc_request
from chain.tx import TransactionSender
from custody.audit import audit_timeline
from custody.cli import Web3ChainView
from ledger.batch import batch_id_of
from ledger.config import PreviousRegistry, Settings
from ledger.digital_link import DigitalLink
from ledger.models import Status
from ledger.scanned import Scanned
from ledger.tags import TagDomain, TagSigner
from ledger.trustbundle import verify_bundle
from scanner.offline import TrustBundle, judge
from tests.api.test_gs1 import _data as gs1_data
from tests.conftest import Chain
from tests.stack import GTIN, TEST_LIMITS, Stack

NEW_GTIN = "09506000134383"
ROOT = b"\x11" * 32
META = b"\x22" * 32
OLD_SERIALS = ["OLD-A", "OLD-B", "OLD-C"]


def _admin(w3: Any) -> TransactionSender:
    admin = Account.from_key(dev_private_key(0))
    return TransactionSender(w3, admin, lambda d: None, backoff=0.05)  # type: ignore[arg-type,return-value]


@contextmanager
def gateway_on(
    node: LocalNode,
    database: tuple[str, str | None],
    home: Path,
    registry: RegistryClient,
    start_block: int,
    admin_key: str | None = None,
    previous: list[PreviousRegistry] | None = None,
) -> Iterator[Stack]:
    """A gateway following `registry` (and the `previous` ones) on the shared database."""
    url, schema = database
    settings = Settings(
        rpc_url=node.url,
        registry=registry.address,
        home=home,
        database_url=url,
        secret_key="test-secret-key",
        index_start_block=start_block,
        stale_after_seconds=3600,
        rate_limits=TEST_LIMITS,
        rate_limits_per_address=TEST_LIMITS,
        previous_registries=previous or [],
    )
    engine = make_engine(settings.sqlalchemy_url, schema)
    gateway = Gateway.from_settings(settings, engine)
    key = admin_key or create_dev_admin(engine, settings.secret_key)
    try:
        with TestClient(create_app(gateway, background=False)) as client:
            yield Stack(node, registry, gateway, client, key)
    finally:
        gateway.stop()
        engine.dispose()


def _sealed(stack: Stack, org: dict[str, Any], field: str) -> bytes:
    with Session(stack.gateway.engine) as session:
        row = session.exec(select(Organization).where(Organization.id == org["id"])).one()
        token = getattr(row, field)
        assert token is not None
        return unseal(stack.gateway.settings.secret_key, token)


def _enroll(stack: Stack, org: dict[str, Any], gtin: str, lot: str, serials: list[str]) -> str:
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": gtin, "lot": lot, "serials": serials, "expiry": "281231"},
        headers=stack.headers(org["apiKey"]),
    )
    assert r.status_code == 201, r.text
    stack.sync()
    return str(r.json()["batchId"])


def _tags(stack: Stack, org: dict[str, Any], batch_id: str) -> dict[str, str]:
    return {t["serial"]: t["uri"] for t in stack.tags(org["apiKey"], batch_id)}


def _bundle(stack: Stack, key: str) -> TrustBundle:
    stack.sync()
    r = stack.client.get("/v1/trust-bundle", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    published = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    verified = verify_bundle(r.json(), published)
    return TrustBundle.from_payload(verified.payload, verified.public_key)


def _offline(bundle: TrustBundle, **body: Any) -> dict[str, Any]:
    return judge(bundle, Scanned.from_request(body), max_age=86_400.0)


@pytest.fixture(scope="module")
def anvil() -> Iterator[LocalNode]:
    """A node of this module's own: the test takes a block back (`evm_revert`)."""
    with LocalNode("anvil") as node:
        yield node


def test_old_registry_batches_verify_through_the_gateway_after_an_upgrade(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    w3 = connect(anvil.url)
    admin = _admin(w3)
    start = int(w3.eth.block_number)
    old_address, _ = deploy(admin, "BorderLedgerRegistryV1", admin.address)
    old = RegistryClient(w3, old_address, admin)

    # --- before the upgrade: a gateway on the old registry enrolls a batch there
    with gateway_on(anvil, database, tmp_path, old, start) as before:
        acme = before.org("Acme Pharma", "rights_holder", "TMK 1", gtins=())
        officer = before.org("NL Customs", "customs")
        old_batch = _enroll(before, acme, GTIN, "OLD-1", OLD_SERIALS)
        old_tags = _tags(before, acme, old_batch)
        was = before.verify(officer["apiKey"], tag=old_tags["OLD-A"])
        assert was["verdict"] == "GENUINE", was
        admin_key = before.admin_key
    registered = old.get_batch(old_batch)
    with Session(make_engine(*database)) as session:
        row = session.get(IndexedBatch, old_batch)
        assert row is not None
        original_block, original_time = row.block_number, row.registered_at

    # --- the upgrade: a new registry; the old one retired at this block
    new = RegistryClient.deploy(admin)
    retired = PreviousRegistry(registry=old_address, retired_at_block=int(w3.eth.block_number))
    with gateway_on(anvil, database, tmp_path, new, start, admin_key, [retired]) as after:
        after.sync()
        with Session(after.gateway.engine) as session:
            state = session.get(IndexerState, 1)
            assert state is not None and state.registry_address == new.address
            assert state.registries == ",".join(sorted([new.address, old_address]))
            logged = {log.registry_address for log in session.exec(select(ChainLog)).all()}
            assert logged == {old_address, new.address}  # the old registry's re-indexed
        key = officer["apiKey"]

        # the old batch's tag: genuine, on the registry that holds it, original block/time
        answer = after.verify(key, tag=old_tags["OLD-A"])
        assert answer["verdict"] == "GENUINE", answer
        assert "SIGNATURE_VALID" in answer["reasons"] and "SERIAL_IN_BATCH" in answer["reasons"]
        proof = answer["proof"]
        assert proof["registry"] == old_address
        receipt = w3.eth.get_transaction_receipt(proof["batchRegistrationTx"])
        assert proof["batchRegistrationBlock"] == original_block == receipt["blockNumber"]
        assert was["proof"]["batchRegistrationBlock"] == original_block
        assert proof["batchRegistrationTime"] == original_time == registered.registered_at
        assert proof["batchRegistrationTx"] == was["proof"]["batchRegistrationTx"]
        typed = after.verify(key, gtin=GTIN, serial="OLD-B", lot="OLD-1")
        assert typed["verdict"] == "GENUINE_UNSIGNED", typed  # typed: no signature to check
        assert typed["proof"]["registry"] == old_address
        assert "SERIAL_IN_BATCH" in typed["reasons"]
        gs1 = gs1_data(after, key, "OLD-1", "OLD-B")
        assert gs1["verified"] is True, gs1

        # a forged tag for the old batch: a key nobody registered, or the holder's own key
        # signing for the new registry's domain (not the one the batch's tags are signed for)
        signer_key = _sealed(after, acme, "signer_key_encrypted")
        forged = {
            "random key": TagSigner(
                secrets.token_bytes(32), TagDomain(new.chain_id, old_address)
            ).sign(GTIN, "OLD-A", "OLD-1"),
            "wrong domain": TagSigner(signer_key, TagDomain(new.chain_id, new.address)).sign(
                GTIN, "OLD-A", "OLD-1"
            ),
        }
        forged_tags = {
            name: DigitalLink(GTIN, "OLD-1", "OLD-A", sig, "resolver.example").to_uri()
            for name, sig in forged.items()
        }
        for name, tag in forged_tags.items():
            suspect = after.verify(key, tag=tag)
            assert suspect["verdict"] == "COUNTERFEIT_SUSPECT", (name, suspect)
            assert "SIGNER_UNKNOWN" in suspect["reasons"], (name, suspect)

        # custody: the timeline's enrollment names the old registry; the auditor's own audit
        # finds the batch there (the new registry pinned, the old one trusted as replaced)
        r = after.client.get(f"/v1/items/{GTIN}/OLD-B/custody", headers=after.headers(key))
        assert r.status_code == 200, r.text
        timeline = r.json()
        assert timeline["log"]["registry"] == new.address
        assert timeline["log"]["previousRegistries"] == [old_address]
        assert timeline["enrollment"]["registry"] == old_address
        assert timeline["enrollment"]["batchRegistrationBlock"] == original_block
        view = Web3ChainView(anvil.url, new.address)
        report = audit_timeline(timeline, view, registry=new.address, previous=(old_address,))
        [enrolled] = [c for c in report.checks if c.subject == "enrollment"]
        assert enrolled.state == "verified", report.to_dict()
        distrusted = audit_timeline(timeline, view, registry=new.address)
        [refused] = [c for c in distrusted.checks if c.subject == "enrollment"]
        assert refused.state == "failed" and "neither" in refused.detail, refused

        # a new batch goes to the new registry only
        newco = after.org("NewCo", "rights_holder", gtins=(NEW_GTIN,))
        new_batch = _enroll(after, newco, NEW_GTIN, "NEW-1", ["N1", "N2"])
        with Session(after.gateway.engine) as session:
            registrations = {
                str(log.args["batchId"]): log.registry_address
                for log in session.exec(select(ChainLog)).all()
                if log.event == "BatchRegistered"
            }
        # nothing written to the old registry
        assert registrations == {old_batch: old_address, new_batch: new.address}
        assert new.get_batch(new_batch).item_count == 2
        new_tags = _tags(after, newco, new_batch)
        fresh = after.verify(key, tag=new_tags["N1"])
        assert fresh["verdict"] == "GENUINE" and fresh["proof"]["registry"] == new.address
        # enrolling a lot the old registry holds is refused, not written anywhere
        r = after.client.post(
            "/v1/batches",
            json={"gtin": GTIN, "lot": "OLD-1", "serials": ["X"]},
            headers=after.headers(acme["apiKey"]),
        )
        assert r.status_code == 409 and old_address in r.json()["error"]["message"], r.text

        # the trust bundle and the offline scanner agree with the gateway, for both
        bundle = _bundle(after, key)
        assert bundle.registry == new.address
        assert bundle.payload["previousRegistries"] == [old_address]
        listed = {b["batchId"]: b for b in bundle.payload["batches"]}
        assert listed[old_batch]["registry"] == old_address
        assert listed[old_batch]["block"] == original_block
        assert listed[old_batch]["registeredAt"] == original_time
        assert listed[new_batch]["registry"] == new.address
        cases = {
            "old": {"tag": old_tags["OLD-A"]},
            "new": {"tag": new_tags["N1"]},
            **{f"forged {name}": {"tag": tag} for name, tag in forged_tags.items()},
        }
        for name, body in cases.items():
            online, offline = after.verify(key, **body), _offline(bundle, **body)
            assert offline["verdict"] == online["verdict"], (name, online, offline)
            assert offline["batchId"] == online["batchId"]
        assert _offline(bundle, **cases["old"])["registry"] == old_address

        # the holder recalls the old batch on the old registry, after the upgrade
        holder = Account.from_key(_sealed(after, acme, "key_encrypted"))
        as_holder = TransactionSender(w3, holder, old.decode_revert, backoff=0.05)
        snapshot = rpc_request(anvil.url, "evm_snapshot")
        try:
            RegistryClient(w3, old_address, as_holder).set_batch_status(old_batch, Status.RECALLED)
            after.sync()
            recalled = after.verify(key, tag=old_tags["OLD-C"])
            assert recalled["verdict"] == "RECALLED", recalled
            assert recalled["proof"]["batchRegistrationBlock"] == original_block
            assert after.verify(key, tag=new_tags["N2"])["verdict"] == "GENUINE"
            assert gs1_data(after, key, "OLD-1", "OLD-C") == {
                "verified": True,
                "additionalInfo": "Recalled",
            }
            offline = _offline(_bundle(after, key), tag=old_tags["OLD-C"])
            assert offline["verdict"] == "RECALLED", offline
        finally:
            # the recall's block is taken back (a reorganization): the index follows it
            assert rpc_request(anvil.url, "evm_revert", [snapshot]) is True
        rpc_request(anvil.url, "evm_mine")
        rpc_request(anvil.url, "evm_mine")
        after.sync()
        back = after.verify(key, tag=old_tags["OLD-C"])
        assert back["verdict"] == "GENUINE", back
        assert _offline(_bundle(after, key), tag=old_tags["OLD-C"])["verdict"] == "GENUINE"


def _rows(engine: Any) -> dict[str, tuple[Any, ...]]:
    with Session(engine) as session:
        return {
            b.batch_id: (b.registry_address, b.lot, b.status, b.block_number, b.registered_at)
            for b in session.exec(select(IndexedBatch)).all()
        }


def test_the_index_follows_a_retired_registry_by_its_rules(
    chain: Chain, database: tuple[str, str | None]
) -> None:
    """On Anvil and Hardhat: an old registry's batches and statuses are followed, with their
    own block and time; what it registers after its retirement is not; a batch id the old
    registry holds stays its own when the new registry registers it again (its statuses
    there are not applied); a rebuild from the raw logs (a reorganization) gives the same."""
    w3 = chain.registry.w3
    start = int(w3.eth.block_number)
    admin = TransactionSender(w3, chain.admin, chain.registry.decode_revert, backoff=0.05)
    old_address, _ = deploy(admin, "BorderLedgerRegistryV1", chain.admin.address)
    old = RegistryClient(w3, old_address, admin)
    old.accredit_rights_holder(chain.holder.address, "Acme", "TMK-1")
    on_old = RegistryClient(w3, old_address, chain.client(chain.holder).sender)
    held = on_old.register_batch(GTIN, "L-OLD", ROOT, 3, META)
    retired_at = int(w3.eth.block_number)
    late = on_old.register_batch(GTIN, "L-LATE", ROOT, 3, META)  # after retirement

    new_admin = chain.client(chain.admin)
    new_admin.accredit_rights_holder(chain.holder.address, "Acme", "TMK-1")
    new_admin.bind_gtin(GTIN, chain.holder.address)
    on_new = chain.client(chain.holder)
    on_new.register_batch(GTIN, "L-OLD", ROOT, 5, META)  # the same id on the new registry
    on_new.register_batch(GTIN, "L-NEW", ROOT, 2, META)
    on_new.set_batch_status(_bid("L-OLD"), Status.RECALLED)  # the new registry's copy

    url, schema = database
    engine = make_engine(url, schema)
    try:
        create_schema(engine)
        indexer = Indexer(
            engine,
            w3,
            chain.registry.address,
            start_block=start,
            previous=[PreviousRegistry(registry=old_address, retired_at_block=retired_at)],
        )
        indexer.poll_once()
        old_time = int(w3.eth.get_block(held.block_number)["timestamp"])
        rows = _rows(engine)
        assert set(rows) == {_bid("L-OLD"), _bid("L-NEW")}, rows  # L-LATE not followed
        assert rows[_bid("L-OLD")] == (old_address, "L-OLD", 0, held.block_number, old_time)
        assert rows[_bid("L-NEW")][0] == chain.registry.address
        with Session(engine) as session:
            raw = session.exec(select(ChainLog).where(ChainLog.tx_hash == late.tx_hash)).all()
            assert [r.event for r in raw] == ["BatchRegistered"]  # kept raw, not applied

        # the holder recalls its old batch on the old registry, after the upgrade: followed
        on_old.set_batch_status(_bid("L-OLD"), Status.RECALLED)
        indexer.poll_once()
        assert _rows(engine)[_bid("L-OLD")][2] == Status.RECALLED
        before = _rows(engine)
        with Session(engine) as session:
            rebuild_index(session, indexer.retired)
            session.commit()
        assert _rows(engine) == before
    finally:
        engine.dispose()


def _bid(lot: str) -> str:
    return "0x" + batch_id_of(GTIN, lot).hex()


def test_audit_finds_what_was_anchored_before_the_upgrade(chain: Chain) -> None:
    """A custody checkpoint anchored on the old registry, by an agency accredited there only,
    is confirmed by an auditor who trusts that registry as replaced — and only then."""
    w3 = chain.registry.w3
    admin = TransactionSender(w3, chain.admin, chain.registry.decode_revert, backoff=0.05)
    old_address, _ = deploy(admin, "BorderLedgerRegistryV1", chain.admin.address)
    RegistryClient(w3, old_address, admin).accredit_customs_agency(
        chain.agency.address, "NL Customs"
    )
    agency = chain.client(chain.agency).sender
    root = b"\x33" * 32
    RegistryClient(w3, old_address, agency).anchor_checkpoint(7, root)
    new = chain.registry.address
    timeline = {
        "log": {
            "agency": chain.agency.address,
            "registry": new,
            "previousRegistries": [old_address],
            "chainId": chain.registry.chain_id,
            "size": 7,
        },
        "checkpoints": [{"size": 7, "root": "0x" + root.hex(), "agency": chain.agency.address}],
        "entries": [],
    }
    view = Web3ChainView(chain.node.url, new)
    trusted = audit_timeline(timeline, view, registry=new, previous=(old_address,))
    checks = {c.subject: c for c in trusted.checks}
    assert checks["anchoring agency"].ok and checks["checkpoint 7"].ok, trusted.to_dict()
    distrusted = {c.subject: c for c in audit_timeline(timeline, view, registry=new).checks}
    assert not distrusted["anchoring agency"].ok
    assert not distrusted["checkpoint 7"].ok
    assert "never anchored" in distrusted["checkpoint 7"].detail
