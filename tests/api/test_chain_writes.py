"""The chain-writes queue for the registry admin (GET /v1/chain-writes, POST
/v1/chain-writes/{id}/retry): a write the contract really reverts shows as failed with the
revert, and once the admin fixes the cause a retry lands it, once."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from chain.node import dev_private_key
from chain.tx import TransactionSender
from tests.stack import GTIN, Stack, api_error


def refused_registration(stack: Stack) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """A rights holder's batch registration the contract reverts for real: behind the
    gateway's back (its index not synced), the admin's key on chain moves the holder's GTIN
    to another accredited account, so `registerBatch` reverts `GtinOwnedByAnotherHolder`.
    Returns (holder, the enrollment answer, an admin registry client to undo it with)."""
    holder = stack.org("Acme", "rights_holder")
    rival = Account.from_key(dev_private_key(6))
    admin = stack.registry.with_sender(
        TransactionSender(
            stack.registry.w3, Account.from_key(dev_private_key(0)), stack.registry.decode_revert
        )
    )
    admin.accredit_rights_holder(rival.address, "Squatter", "")
    admin.reassign_gtin(GTIN, rival.address)
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "FAIL1", "serials": ["A1", "A2", "A3"]},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 201 and r.json()["registration"] == "failed", r.text
    return holder, r.json(), admin


def _writes(stack: Stack, key: str | None = None, **query: Any) -> list[dict[str, Any]]:
    r = stack.client.get(
        "/v1/chain-writes", params=query, headers=stack.headers(key or stack.admin_key)
    )
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_a_reverted_write_is_listed_failed_and_a_retry_lands_it_once(stack: Stack) -> None:
    holder, enrolled, admin = refused_registration(stack)
    failed = _writes(stack, status="failed")
    assert [w["kind"] for w in failed] == ["register_batch"]
    write = failed[0]
    assert "GtinOwnedByAnotherHolder" in write["error"]
    assert write["subject"] == f"batch {GTIN}/FAIL1" and write["organization"] == "Acme"
    assert write["txHash"] is None and write["block"] is None and write["attempts"] == 1
    assert write["ageSeconds"] >= 0
    # filters and paging
    everything = _writes(stack)
    assert [w["id"] for w in everything] == sorted((w["id"] for w in everything), reverse=True)
    assert {w["status"] for w in everything} == {"done", "failed"}
    assert all(w["kind"] == "bind_gtin" for w in _writes(stack, kind="bind_gtin"))
    page = _writes(stack, limit=1, before=write["id"])
    assert len(page) == 1 and page[0]["id"] < write["id"]

    # still reverting: the retry is tried, and fails again with the revert
    r = stack.client.post(
        f"/v1/chain-writes/{write['id']}/retry", headers=stack.headers(stack.admin_key)
    )
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    assert r.json()["attempts"] == 2

    # the admin puts the GTIN back: now the retry lands the registration
    me = stack.client.get("/v1/organizations/me", headers=stack.headers(holder["apiKey"])).json()
    admin.reassign_gtin(GTIN, me["address"])
    r = stack.client.post(
        f"/v1/chain-writes/{write['id']}/retry", headers=stack.headers(stack.admin_key)
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done" and done["error"] is None
    assert done["txHash"] and done["block"] is not None and done["nonce"] is not None
    again = stack.client.post(
        f"/v1/chain-writes/{write['id']}/retry", headers=stack.headers(stack.admin_key)
    )
    api_error(again, 409, "conflict", "done", "not failed")
    batch = stack.registry.get_batch(enrolled["batchId"])
    assert batch.registered and batch.root == enrolled["root"]
    logs = stack.registry.contract.events.BatchRegistered.get_logs(from_block=0)
    assert (
        sum(1 for log in logs if "0x" + bytes(log["args"]["batchId"]).hex() == enrolled["batchId"])
        == 1
    )
    stack.sync()
    r = stack.client.get(
        f"/v1/batches/{enrolled['batchId']}", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 200 and r.json()["registration"] == "done", r.text


def test_only_the_registry_admin_sees_and_retries_writes(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    customs = stack.org("NL Customs", "customs")
    for key in (holder["apiKey"], customs["apiKey"]):
        api_error(
            stack.client.get("/v1/chain-writes", headers=stack.headers(key)), 403, "forbidden"
        )
        r = stack.client.post("/v1/chain-writes/1/retry", headers=stack.headers(key))
        api_error(r, 403, "forbidden")
    api_error(stack.client.get("/v1/chain-writes"), 401, "unauthenticated")
    admin = stack.headers(stack.admin_key)
    api_error(stack.client.post("/v1/chain-writes/999999/retry", headers=admin), 404, "not_found")
    api_error(stack.client.post("/v1/chain-writes/nope/retry", headers=admin), 422, "invalid_input")
    api_error(stack.client.get("/v1/chain-writes?status=lost", headers=admin), 422, "invalid_input")
    done = _writes(stack, status="done")[0]
    r = stack.client.post(f"/v1/chain-writes/{done['id']}/retry", headers=admin)
    api_error(r, 409, "conflict", "done")
