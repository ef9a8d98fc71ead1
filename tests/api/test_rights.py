"""Rights on chain through the gateway (issue 12): the admin binds and reassigns GTINs and
revokes rights holders through the outbox; the index, the trust bundle and the verdicts
follow."""

from __future__ import annotations

import time

from sqlmodel import Session, select

from api.models import IndexedGtinBinding, IndexedRightsHolder, PendingWrite
from ledger.models import ZERO_ADDRESS
from ledger.trustbundle import verify_bundle
from tests.api.test_gs1 import _data as _gs1_data
from tests.stack import GTIN, Stack, api_error

OTHER_GTIN = "00012345600012"


def _bundle(stack: Stack, key: str) -> dict:  # type: ignore[type-arg]
    r = stack.client.get("/v1/trust-bundle", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    published = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    return verify_bundle(r.json(), published).payload


def test_binding_is_the_admins_and_goes_on_chain(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder", gtins=())
    officer = stack.org("NL Customs", "customs")
    body = {"gtin": GTIN, "organizationId": acme["id"]}
    for key in (acme["apiKey"], officer["apiKey"]):
        api_error(
            stack.client.post("/v1/gtin-bindings", json=body, headers=stack.headers(key)),
            403,
            "forbidden",
        )
    assert stack.registry.gtin_holder(GTIN) == ZERO_ADDRESS
    bound = stack.bind(acme, GTIN)
    assert bound["holder"] == acme["address"] and bound["previous"] is None
    assert bound["write"]["kind"] == "bind_gtin"
    assert stack.registry.gtin_holder(GTIN) == acme["address"]
    # the same binding again is the same write (idempotent), not a second transaction
    again = stack.bind(acme, GTIN)
    assert again["write"]["id"] == bound["write"]["id"]
    stack.sync()
    with Session(stack.gateway.engine) as session:
        row = session.get(IndexedGtinBinding, GTIN)
        assert row is not None and row.holder == acme["address"]
    holders = {h["address"]: h for h in _bundle(stack, officer["apiKey"])["holders"]}
    assert holders[acme["address"]]["boundGtins"] == [GTIN]
    assert holders[acme["address"]]["revokedAt"] is None


def test_bad_binding_requests(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder")
    officer = stack.org("NL Customs", "customs")
    post = stack.client.post
    headers = stack.headers(stack.admin_key)
    bad = {"gtin": GTIN[:-1] + "3", "organizationId": acme["id"]}
    api_error(post("/v1/gtin-bindings", json=bad, headers=headers), 422, "invalid_input", "check")
    unknown = {"gtin": GTIN, "organizationId": 9999}
    api_error(post("/v1/gtin-bindings", json=unknown, headers=headers), 404, "not_found", "9999")
    customs = {"gtin": OTHER_GTIN, "organizationId": officer["id"]}
    api_error(
        post("/v1/gtin-bindings", json=customs, headers=headers),
        422,
        "invalid_input",
        "not a rights holder",
    )
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(PendingWrite).where(PendingWrite.kind == "bind_gtin")).all()
        kinds = [w.kind for w in session.exec(select(PendingWrite)).all()]
    assert kinds.count("bind_gtin") == 1  # only the fixture's binding of GTIN to Acme


def test_reassignment_is_explicit_and_followed(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder")
    successor = stack.org("Successor", "rights_holder")
    batch = stack.enroll(acme["apiKey"], serials=["A1", "A2"])
    body = {"gtin": GTIN, "organizationId": successor["id"]}
    refused = stack.client.post(
        "/v1/gtin-bindings", json=body, headers=stack.headers(stack.admin_key)
    )
    api_error(refused, 409, "conflict", acme["address"], "reassign")
    assert stack.registry.gtin_holder(GTIN) == acme["address"]

    moved = stack.bind(successor, GTIN, reassign=True)
    assert moved["previous"] == acme["address"] and moved["write"]["kind"] == "reassign_gtin"
    stack.sync()
    with Session(stack.gateway.engine) as session:
        row = session.get(IndexedGtinBinding, GTIN)
        assert row is not None and (row.holder, row.previous) == (
            successor["address"],
            acme["address"],
        )
    # Acme's earlier batch stays Acme's and verifies; new lots are the successor's only
    tag = stack.tags(acme["apiKey"], batch["batchId"])[0]["uri"]
    officer = stack.org("NL Customs", "customs")
    verdict = stack.verify(officer["apiKey"], tag=tag)
    assert verdict["verdict"] == "GENUINE", verdict
    assert verdict["product"]["rightsHolder"]["address"] == successor["address"]
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "L2", "serials": ["B1"]},
        headers=stack.headers(acme["apiKey"]),
    )
    api_error(r, 403, "forbidden", "bound to another rights holder", successor["address"])
    stack.enroll(successor["apiKey"], lot="S1", serials=["C1"])


def test_revoked_holder_keeps_its_batches_and_loses_its_powers(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder")
    officer = stack.org("NL Customs", "customs")
    batch = stack.enroll(acme["apiKey"], serials=["A1", "A2"], expiry="281231")
    tag = stack.tags(acme["apiKey"], batch["batchId"])[0]["uri"]
    customs = stack.client.post(
        f"/v1/organizations/{officer['id']}/revocation", headers=stack.headers(stack.admin_key)
    )
    api_error(customs, 422, "invalid_input", "not a rights holder")
    # times order registration and revocation: not in the same second (block times). Wait
    # rather than move the node's clock: the shared node's clock stays the wall clock, which
    # other tests compare bundle and scan times with.
    time.sleep(1.1)
    r = stack.client.post(
        f"/v1/organizations/{acme['id']}/revocation", headers=stack.headers(stack.admin_key)
    )
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    record = stack.registry.rights_holder(acme["address"])
    assert not record.accredited and record.revoked_at > 0
    stack.sync()
    with Session(stack.gateway.engine) as session:
        row = session.get(IndexedRightsHolder, acme["address"])
        assert row is not None and row.revoked_at == record.revoked_at
    # the batch registered before the revocation stays as it was, here and in the bundle
    verdict = stack.verify(officer["apiKey"], tag=tag)
    assert verdict["verdict"] == "GENUINE", verdict
    assert verdict["product"]["rightsHolder"]["revokedAt"] == record.revoked_at
    holders = {h["address"]: h for h in _bundle(stack, officer["apiKey"])["holders"]}
    assert holders[acme["address"]]["revokedAt"] == record.revoked_at
    # ...and for GS1 verification requests
    assert _gs1_data(stack, officer["apiKey"], "L1", "A1") == {"verified": True}
    # a new batch goes nowhere: the chain refuses the revoked holder's registration
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "L9", "serials": ["Z1"]},
        headers=stack.headers(acme["apiKey"]),
    )
    assert r.status_code == 201 and r.json()["registration"] == "failed", r.text
    assert "AccessControlUnauthorizedAccount" in r.json()["error"]
