"""GS1 company prefix bindings through the gateway (issue 15): the registry admin binds and
unbinds a prefix through the outbox; enrollment, the index, the trust bundle (and the offline
scanner reading it) and the verdicts resolve a GTIN's holder by it, a GTIN bound on its own
winning; bad requests are 4xx naming the problem, with nothing queued."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from api.models import IndexedPrefixBinding, PendingWrite
from ledger.models import ZERO_ADDRESS
from ledger.trustbundle import verify_bundle
from scanner.offline import TrustBundle
from tests.api.test_guides import guide_body
from tests.chain.test_registry_contract import gtin_with_check_digit
from tests.stack import GTIN, Stack, api_error

PREFIX = "950600"  # GTIN 09506000134352 falls under it
RIVAL_GTIN = gtin_with_check_digit("0950600999999")  # under it too, bound on its own


def _bundle(stack: Stack, key: str) -> tuple[dict[str, Any], str]:
    r = stack.client.get("/v1/trust-bundle", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    published = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    return verify_bundle(r.json(), published).payload, published


def _bind(stack: Stack, prefix: str, org: dict[str, Any]) -> Any:
    body = {"prefix": prefix, "organizationId": org["id"]}
    return stack.client.post(
        "/v1/prefix-bindings", json=body, headers=stack.headers(stack.admin_key)
    )


def _unbind(stack: Stack, prefix: str, key: str | None = None) -> Any:
    headers = stack.headers(key or stack.admin_key)
    return stack.client.delete(f"/v1/prefix-bindings/{prefix}", headers=headers)


def test_prefix_binding_resolves_holders_everywhere(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder", gtins=())
    rival = stack.org("Rival", "rights_holder", gtins=())
    officer = stack.org("NL Customs", "customs")
    for key in (acme["apiKey"], officer["apiKey"]):
        body = {"prefix": PREFIX, "organizationId": acme["id"]}
        r = stack.client.post("/v1/prefix-bindings", json=body, headers=stack.headers(key))
        api_error(r, 403, "forbidden")

    r = _bind(stack, PREFIX, acme)
    assert r.status_code == 202, r.text
    bound = r.json()
    assert (bound["prefix"], bound["holder"]) == (PREFIX, acme["address"])
    assert (bound["write"]["kind"], bound["write"]["status"]) == ("bind_prefix", "done")
    assert stack.registry.company_prefix_holder(PREFIX) == acme["address"]
    assert _bind(stack, PREFIX, acme).json()["write"]["id"] == bound["write"]["id"]  # a retry
    stack.bind(rival, RIVAL_GTIN)  # a GTIN bound on its own wins over the prefix

    # enrollment: Acme enrolls the GTIN under its prefix, no GTIN binding needed...
    batch = stack.enroll(acme["apiKey"], serials=["A1", "A2"])
    assert stack.registry.gtin_holder(GTIN) == ZERO_ADDRESS
    # ...and the index refuses the others' batches, naming the binding
    stack.sync()
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "R1", "serials": ["R1"]},
        headers=stack.headers(rival["apiKey"]),
    )
    api_error(r, 403, "forbidden", f"company prefix {PREFIX}", acme["address"])
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": RIVAL_GTIN, "lot": "A9", "serials": ["A9"]},
        headers=stack.headers(acme["apiKey"]),
    )
    api_error(r, 403, "forbidden", "bound to another rights holder", rival["address"])
    with Session(stack.gateway.engine) as session:
        row = session.get(IndexedPrefixBinding, PREFIX)
        assert row is not None and row.holder == acme["address"]

    # verdicts and the trust bundle name the prefix's holder
    tag = stack.tags(acme["apiKey"], batch["batchId"])[0]["uri"]
    verdict = stack.verify(officer["apiKey"], tag=tag)
    assert verdict["verdict"] == "GENUINE", verdict
    assert verdict["product"]["rightsHolder"]["address"] == acme["address"]
    payload, published = _bundle(stack, officer["apiKey"])
    holders = {h["address"]: h for h in payload["holders"]}
    assert holders[acme["address"]]["boundPrefixes"] == [PREFIX]
    assert holders[rival["address"]]["boundPrefixes"] == []
    offline = TrustBundle.from_payload(payload, published)
    assert offline.prefix_owners == {PREFIX: acme["address"]}

    # unbinding: idempotent on retry, followed by the index; binding again is a new act
    r = _unbind(stack, PREFIX)
    assert r.status_code == 202, r.text
    unbound = r.json()
    assert (unbound["holder"], unbound["write"]["kind"]) == (acme["address"], "unbind_prefix")
    assert unbound["write"]["status"] == "done"
    assert _unbind(stack, PREFIX).json()["write"]["id"] == unbound["write"]["id"]
    assert stack.registry.company_prefix_holder(PREFIX) == ZERO_ADDRESS
    stack.sync()
    with Session(stack.gateway.engine) as session:
        assert session.get(IndexedPrefixBinding, PREFIX) is None
    again = _bind(stack, PREFIX, rival)
    assert again.status_code == 202, again.text
    assert again.json()["write"]["id"] not in (bound["write"]["id"], unbound["write"]["id"])
    assert stack.registry.resolve_gtin_holder(GTIN) == (rival["address"], PREFIX)
    # Acme's earlier batch keeps its holder and still verifies
    assert stack.verify(officer["apiKey"], tag=tag)["verdict"] == "GENUINE"


def test_bad_prefix_requests(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder", gtins=())
    rival = stack.org("Rival", "rights_holder", gtins=())
    officer = stack.org("NL Customs", "customs")
    for prefix, words in (
        ("12345", ("12345", "6 to 12")),
        ("1234567890123", ("13 digits",)),
        ("61a141", ("61a141", "only digits")),
        ("2012345", ("2012345", "restricted circulation")),
        ("9912345", ("coupons",)),
        ("0000012", ("gtin-8",)),
    ):
        api_error(_bind(stack, prefix, acme), 422, "invalid_input", *words)
    api_error(_bind(stack, PREFIX, {"id": 9999}), 404, "not_found", "9999")
    api_error(_bind(stack, PREFIX, officer), 422, "invalid_input", "not a rights holder")
    headers = stack.headers(stack.admin_key)
    for body in ({"prefix": PREFIX}, {"organizationId": acme["id"]}, {"prefix": 950600}):
        r = stack.client.post("/v1/prefix-bindings", json=body, headers=headers)
        api_error(r, 422, "invalid_input")
    api_error(_unbind(stack, PREFIX), 404, "not_found", PREFIX, "no rights holder")
    api_error(_unbind(stack, "12"), 422, "invalid_input", "6 to 12")

    assert _bind(stack, PREFIX, acme).status_code == 202
    api_error(_bind(stack, PREFIX, rival), 409, "conflict", acme["address"], "unbind")
    api_error(_unbind(stack, PREFIX, acme["apiKey"]), 403, "forbidden")
    assert stack.registry.company_prefix_holder(PREFIX) == acme["address"]
    with Session(stack.gateway.engine) as session:
        kinds = [w.kind for w in session.exec(select(PendingWrite)).all()]
    assert kinds.count("bind_prefix") == 1 and "unbind_prefix" not in kinds


def test_a_bound_prefix_makes_guides_of_its_products_the_holders(stack: Stack) -> None:
    """Before any batch: the holder of a bound prefix writes the guide of a GTIN under it
    and of the prefix (or a longer one within it); another holder is refused both, and the
    holder is refused a GTIN under its prefix that is bound on its own to another."""
    acme = stack.org("Acme", "rights_holder", gtins=())
    rival = stack.org("Rival", "rights_holder", gtins=())
    assert _bind(stack, PREFIX, acme).status_code == 202
    stack.bind(rival, RIVAL_GTIN)
    stack.sync()
    for key, product, status in (
        (rival["apiKey"], {"gtin": GTIN}, 403),
        (rival["apiKey"], {"gtin": None, "companyPrefix": PREFIX}, 403),
        (acme["apiKey"], {"gtin": RIVAL_GTIN}, 403),
        (acme["apiKey"], {"gtin": GTIN}, 201),
        (acme["apiKey"], {"gtin": None, "companyPrefix": PREFIX + "0"}, 201),
    ):
        r = stack.client.post("/v1/guides", json=guide_body(**product), headers=stack.headers(key))
        assert r.status_code == status, (product, r.text)
        if status == 403:
            api_error(r, 403, "forbidden", "a guide describes the holder's own products")
