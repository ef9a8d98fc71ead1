"""The registry admin's read APIs of organizations (issue 15): GET /v1/organizations (paged,
by kind, with each accreditation's progress on chain and the suspension) and
GET /v1/organizations/{id} (its chain writes and GTIN bindings); other kinds refused."""

from __future__ import annotations

from tests.stack import GTIN, Stack, api_error


def test_admin_lists_pages_filters_and_reads_organizations(stack: Stack) -> None:
    admin = stack.headers(stack.admin_key)
    holder = stack.org("Acme", "rights_holder")
    customs = stack.org("Customs NL", "customs")
    auditor = stack.org("Audit & Co", "auditor")

    r = stack.client.get("/v1/organizations", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4 and body["nextOffset"] is None
    by_name = {o["name"]: o for o in body["organizations"]}
    assert list(by_name) == sorted(by_name)  # by name
    acme = by_name["Acme"]
    assert acme["accreditation"]["kind"] == "accredit_holder"
    assert acme["accreditation"]["status"] == "done" and acme["accreditation"]["block"] > 0
    assert acme["accreditation"]["txHash"].startswith("0x")
    assert acme["suspended"] is False and acme["revocation"] is None
    assert by_name["Customs NL"]["accreditation"]["kind"] == "accredit_agency"
    assert by_name["Audit & Co"]["accreditation"] is None  # auditors are not on chain

    r = stack.client.get("/v1/organizations?kind=customs", headers=admin)
    assert [o["id"] for o in r.json()["organizations"]] == [customs["id"]]
    first = stack.client.get("/v1/organizations?limit=2", headers=admin).json()
    assert len(first["organizations"]) == 2 and first["nextOffset"] == 2
    rest = stack.client.get("/v1/organizations?limit=2&offset=2", headers=admin).json()
    assert rest["nextOffset"] is None
    names = [o["name"] for o in first["organizations"] + rest["organizations"]]
    assert sorted(names) == names and len(set(names)) == 4
    api_error(stack.client.get("/v1/organizations?kind=brand", headers=admin), 422, "invalid_input")
    api_error(stack.client.get("/v1/organizations?limit=0", headers=admin), 422, "invalid_input")

    detail = stack.client.get(f"/v1/organizations/{holder['id']}", headers=admin).json()
    assert [g["gtin"] for g in detail["gtins"]] == [GTIN]
    assert detail["gtins"][0]["write"]["status"] == "done"
    assert {w["kind"] for w in detail["writes"]} == {"accredit_holder", "add_signer", "bind_gtin"}
    r = stack.client.post(f"/v1/organizations/{holder['id']}/revocation", headers=admin)
    assert r.status_code == 202, r.text
    detail = stack.client.get(f"/v1/organizations/{holder['id']}", headers=admin).json()
    assert detail["suspended"] is True and detail["revocation"]["block"] > 0
    # a suspended holder gets no new GTIN: refused before anything is queued
    other = {"gtin": "09506000134369", "organizationId": holder["id"]}
    r = stack.client.post("/v1/gtin-bindings", json=other, headers=admin)
    api_error(r, 409, "conflict", "suspended")
    again = stack.client.get(f"/v1/organizations/{holder['id']}", headers=admin).json()
    assert again["writes"] == detail["writes"]
    assert (
        stack.client.get(f"/v1/organizations/{auditor['id']}", headers=admin).json()["writes"] == []
    )
    api_error(stack.client.get("/v1/organizations/999999", headers=admin), 404, "not_found")

    # every other kind is refused the admin's reads
    for key in (holder["apiKey"], customs["apiKey"], auditor["apiKey"]):
        api_error(
            stack.client.get("/v1/organizations", headers=stack.headers(key)), 403, "forbidden"
        )
        r = stack.client.get(f"/v1/organizations/{holder['id']}", headers=stack.headers(key))
        api_error(r, 403, "forbidden")
