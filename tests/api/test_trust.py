"""GET /v1/trust-bundle and /v1/trust-bundle/key on a real stack: who may fetch it, what it
holds, which key signs it, and that it is still served while the chain is unreachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.models import Role
from api.trust import _block_times
from chain.node import LocalNode
from ledger.batch import item_key_of
from ledger.trustbundle import derive_signing_key, public_key_hex, signing_key, verify_bundle
from tests.rpc_proxy import RpcProxy
from tests.stack import GTIN, Stack, running_stack

POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"], "released": {"NL": 10}}


def fetch(stack: Stack, key: str) -> dict[str, Any]:
    r = stack.client.get("/v1/trust-bundle", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def test_roles_and_the_published_key(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    officer = stack.org("NL Customs", "customs")
    auditor = stack.org("Audit Co", "auditor")
    stack.sync()
    key = stack.client.get("/v1/trust-bundle/key")  # public: no API key needed
    assert key.status_code == 200
    published = key.json()
    assert published["algorithm"] == "Ed25519"
    assert published["publicKey"] == public_key_hex(derive_signing_key("test-secret-key"))
    assert len(published["keyId"]) == 16
    for api_key in (officer["apiKey"], stack.admin_key):
        envelope = fetch(stack, api_key)
        assert envelope["signature"]["publicKey"] == published["publicKey"]
        verify_bundle(envelope, published["publicKey"])
    for api_key in (holder["apiKey"], auditor["apiKey"]):
        r = stack.client.get("/v1/trust-bundle", headers=stack.headers(api_key))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
        assert Role.CUSTOMS.value in r.json()["error"]["message"]
    r = stack.client.get("/v1/trust-bundle")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_contents_are_the_index(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    rival = stack.org("Rival Inc", "rights_holder")
    officer = stack.org("NL Customs", "customs")
    l1 = stack.enroll(
        holder["apiKey"], serials=["A1", "A2", "A3"], expiry="281231", route_policy=POLICY
    )
    l2 = stack.enroll(holder["apiKey"], lot="L2", serials=["B1"])
    r = stack.client.post(
        f"/v1/batches/{l1['batchId']}/status",
        json={"status": "stolen", "serial": "A2"},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 202, r.text
    r = stack.client.post(
        f"/v1/batches/{l2['batchId']}/status",
        json={"status": "recalled"},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 202, r.text
    stack.sync()
    envelope = fetch(stack, officer["apiKey"])
    published = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    body = verify_bundle(envelope, published).payload
    chain = stack.registry
    w3 = chain.w3

    assert body["format"] == "borderledger/trust-bundle/2"  # RFC 8785 bytes
    assert body["chainId"] == chain.chain_id and body["registry"] == chain.address
    index = body["index"]
    assert index["block"] == int(w3.eth.block_number)
    assert index["blockTime"] == int(w3.eth.get_block(index["block"])["timestamp"])
    assert 0 <= body["issuedAt"] - index["blockTime"] < 600

    holders = {h["address"]: h for h in body["holders"]}
    assert holders[holder["address"]]["gtins"] == [GTIN]
    assert holders[holder["address"]]["name"] == "Acme Pharma"
    assert holders[rival["address"]]["gtins"] == []
    signers = {s["address"]: s for s in body["signers"]}
    assert set(signers) == {holder["signer"], rival["signer"]}
    acme_key = signers[holder["signer"]]
    on_chain = chain.signer_key(holder["signer"])
    assert acme_key["holder"] == holder["address"] and acme_key["revokedAt"] is None
    assert acme_key["addedAt"] == on_chain.added_at

    batches = {b["batchId"]: b for b in body["batches"]}
    assert set(batches) == {l1["batchId"], l2["batchId"]}
    first = batches[l1["batchId"]]
    record = chain.get_batch(l1["batchId"])
    assert first["root"] == record.root and first["registeredAt"] == record.registered_at
    assert first["holder"] == holder["address"] and first["itemCount"] == 3
    assert (first["gtin"], first["lot"], first["expiry"]) == (GTIN, "L1", "281231")
    assert first["tx"] == l1["txHash"] and first["block"] == l1["block"]
    assert first["status"] == "active" and first["statusChangedAt"] is None
    assert first["routePolicy"]["markets"] == ["DE", "NL"]
    assert first["routePolicy"]["nodes"] == ["CNSHA", "NLRTM"]
    second = batches[l2["batchId"]]
    assert second["status"] == "recalled" and second["statusChangedAt"] >= second["registeredAt"]
    assert second["routePolicy"] is None

    # only non-active items, found by item key (no serials, no salts in a bundle)
    (item,) = body["items"]
    assert item["batchId"] == l1["batchId"]
    assert item["itemKey"] == "0x" + item_key_of(GTIN, "A2").hex()
    assert item["status"] == "stolen" and item["changedAt"] >= first["registeredAt"]
    strings, keys = _strings_and_keys(body)
    assert not {"A1", "A2", "A3", "B1"} & strings  # no serial anywhere
    assert not [k for k in keys if "salt" in k.lower() or "proof" in k.lower()]


def _strings_and_keys(value: Any) -> tuple[set[str], set[str]]:
    strings: set[str] = set()
    keys: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            keys.update(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str):
            strings.add(v)
    return strings, keys


def test_a_dedicated_key_setting(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    seed = "42" * 32
    with running_stack(anvil, database, tmp_path, bundle_signing_key=seed) as stack:
        officer = stack.org("NL Customs", "customs")
        stack.sync()
        published = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
        assert published == public_key_hex(signing_key("ignored", seed))
        assert published != public_key_hex(derive_signing_key("test-secret-key"))
        verify_bundle(fetch(stack, officer["apiKey"]), published)


def test_served_while_the_chain_is_down(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    with (
        RpcProxy(anvil.url) as proxy,
        running_stack(anvil, database, tmp_path, rpc_url=proxy.url) as stack,
    ):
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
        officer = stack.org("NL Customs", "customs")
        stack.enroll(holder["apiKey"], serials=["A1"])
        stack.sync()
        key = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
        up = verify_bundle(fetch(stack, officer["apiKey"]), key).payload
        proxy.mode = "down"
        _block_times.clear()  # forget the remembered time: read it from the index instead
        down = verify_bundle(fetch(stack, officer["apiKey"]), key).payload
    assert down["index"]["block"] == up["index"]["block"]
    # the block time is read from the registry event of that block, never invented
    assert down["index"]["blockTime"] == up["index"]["blockTime"]
    assert down["batches"] == up["batches"]
