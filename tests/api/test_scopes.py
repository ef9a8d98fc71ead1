"""Each party sees only its own: every /v1 route, tried by every role on its own party's
object and on another party's (docs/architecture.md, "What a caller sees").

`ROUTES` is the registry every route under /v1 must be entered in: a `Case` (what each role
gets on its own side's object and on the other side's) or `Unscoped` (why the route has no
other party's object to hide). `test_every_v1_route_is_in_the_scope_registry` fails when a
route is added without an entry, so each new route states its scope here.

The two sides: "own" is Acme (rights holder), customs agency A and the auditor granted Acme;
"other" is Rival (another rights holder) and customs agency B. Outcomes: `ok` (the route
answered about the object: 2xx, or 409/422 for a state conflict), `hidden` (404, as for an
unknown object), `denied` (403: the role may not use the route at all); for list routes
`seen` / `unseen` (the side's object is listed or not).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlmodel import Session, select

from api import case_clocks
from api.case_models import CaseClock
from api.models import Alert, Organization, ScanEvent
from api.orgs import new_api_key
from api.routes import ROUTERS
from chain.node import LocalNode
from custody import entries
from custody.audit import audit_timeline
from custody.cli import Web3ChainView
from custody.log import proof_from_hex, verify_inclusion
from scanner.device import init_device
from tests.pdf import pdf_text
from tests.stack import GTIN, Stack, running_stack
from tests.worlds import OTHER_GTIN

POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]}
AGENCY_A, AGENCY_B = "NL Customs", "DE Zoll"
ROLES = ("admin", "holder", "customs", "auditor")
SIDES = ("own", "other")


@dataclass
class Party:
    """One side's objects."""

    holder: dict[str, Any]
    agency: dict[str, Any]
    auditor: dict[str, Any]
    gtin: str
    prefix: str
    batch: str = ""
    job: str = ""
    alert: str = ""
    device: str = ""
    delivery: str = ""
    case: str = ""  # a customs case of the side's agency on the side's holder's rights
    port: str = ""  # the case's port: its row in the seizure statistics by port
    seizure: str = ""  # the case's seizure, requested and approved by two of its officers
    guide: str = ""  # the holder's guide of its product, published by the side's agency
    photo: str = ""  # a photo of the guide
    image: str = ""  # a redacted image attached to the case (its holder reads it)

    def serial(self, n: int) -> str:
        return f"{self.prefix}{n:04d}"


@dataclass
class World:
    stack: Stack
    keys: dict[str, str]
    sides: dict[str, Party]

    def endpoint(self, side: str) -> str:
        return f"https://hooks.{side}.example/borderledger"


Target = Callable[[World, Party], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """A scoped route: the request about a side's object, and each role's outcome on its own
    side's object and on the other side's."""

    target: Target
    expect: dict[str, tuple[str, str]]
    #: list routes: the side's object id, found in the answer's items under `field`
    listed: Callable[[Party], str] | None = None
    field: str = "id"
    #: put back what the request changed (a removed endpoint), after each request
    after: Callable[[World, Party], None] | None = None
    #: list routes answering an object: where its items are (default: the answer itself)
    items: Callable[[Any], list[dict[str, Any]]] | None = None
    #: what the items are read from (default: the JSON body), given the response
    body: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Unscoped:
    """A route with no other party's object: `why` says what it answers instead."""

    why: str


def _fiscal_now() -> int:
    """The US fiscal year the seizures made now fall in."""
    now = datetime.now(UTC)
    return now.year + (now.month >= 10)


def req(method: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"method": method, "url": url, **extra}


# Expectations shared by routes of one kind.
HOLDER_OR_ADMIN = {
    "admin": ("ok", "ok"),
    "holder": ("ok", "hidden"),
    "customs": ("denied", "denied"),
    "auditor": ("denied", "denied"),
}
OFFICER_OBJECT = {
    "admin": ("ok", "ok"),
    "holder": ("denied", "denied"),
    "customs": ("ok", "hidden"),
    "auditor": ("denied", "denied"),
}
OWN_JOB = {
    "admin": ("ok", "ok"),
    "holder": ("ok", "hidden"),
    "customs": ("hidden", "hidden"),
    "auditor": ("hidden", "hidden"),
}
CASE_READ = {
    "admin": ("ok", "ok"),
    "holder": ("ok", "hidden"),
    "customs": ("ok", "hidden"),
    "auditor": ("ok", "hidden"),
}
#: guides: the holder's and every customs agency's, no other role's (docs/guides.md)
GUIDE_READ = {
    "admin": ("denied", "denied"),
    "holder": ("ok", "hidden"),
    "customs": ("ok", "ok"),
    "auditor": ("denied", "denied"),
}
GUIDE_WRITE = {
    "admin": ("denied", "denied"),
    "holder": ("ok", "hidden"),
    "customs": ("denied", "denied"),
    "auditor": ("denied", "denied"),
}
GUIDE_REVIEW = {
    "admin": ("denied", "denied"),
    "holder": ("denied", "denied"),
    "customs": ("ok", "ok"),
    "auditor": ("denied", "denied"),
}
CASE_LIST = {
    "admin": ("seen", "seen"),
    "holder": ("seen", "unseen"),
    "customs": ("seen", "unseen"),
    "auditor": ("seen", "unseen"),
}
CASE_ACT = {
    "admin": ("ok", "ok"),
    "holder": ("ok", "hidden"),
    "customs": ("ok", "hidden"),
    "auditor": ("denied", "denied"),
}
PRODUCT_VERIFY = {
    "admin": ("ok", "ok"),
    "holder": ("ok", "hidden"),
    "customs": ("ok", "ok"),
    "auditor": ("denied", "denied"),
}
PRODUCT_VERIFY_BATCH = {
    "admin": ("seen", "seen"),
    "holder": ("seen", "unseen"),
    "customs": ("seen", "seen"),
    "auditor": ("denied", "denied"),
}


def _restore_endpoint(world: World, party: Party) -> None:
    r = world.stack.client.put(
        f"/v1/organizations/{party.holder['id']}/webhook",
        json={"url": world.endpoint(party.prefix)},
        headers=world.stack.headers(world.keys["admin"]),
    )
    assert r.status_code in (200, 201), r.text


def _case_body(p: Party, **extra: Any) -> dict[str, Any]:
    return {
        "profile": "us-trademark",
        "mode": "express",
        "port": p.port,
        "origin": "CN",
        "presentedAt": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "lines": [{"category": "watches_jewelry", "quantity": 40, "unitMsrpCents": 25_000}],
        "parties": [{"role": "importer", "name": "Example Trading", "country": "HK"}],
        **extra,
    }


def _guide_body(p: Party) -> dict[str, Any]:
    return {
        "gtin": p.gtin,
        "brand": p.holder["name"],
        "name": f"Product {p.prefix}",
        "category": "pharmaceuticals_personal_care",
        "features": [{"kind": "label", "description": "a blue seal"}],
        "contacts": [{"kind": "legal", "name": "Legal", "email": "legal@example.com"}],
        "recordations": [{"kind": "eu_afa", "number": f"AFA {p.prefix}", "expires": "2099-01-01"}],
    }


#: a 1x1 PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478"
    "9c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


LINK = "a party without an account, authorised by its single-use link token alone"


def _gs1(p: Party, serial: str) -> str:
    return f"/v1/gs1/verify/gtin/{p.gtin}/lot/L1/ser/{serial}"


#: Every route under /v1, in the order the matrix runs them (reads before changes).
ROUTES: dict[tuple[str, str], Case | Unscoped] = {
    ("GET", "/v1/organizations/me"): Unscoped("the calling organization itself"),
    ("POST", "/v1/organizations"): Unscoped("the registry admin creates organizations"),
    ("GET", "/v1/organizations"): Unscoped(
        "the registry admin lists organizations (admin only; tests/api/test_organization_list.py)"
    ),
    ("GET", "/v1/organizations/{organization_id}"): Unscoped(
        "the registry admin reads one with its chain writes (admin only)"
    ),
    # Rights on chain (tests/api/test_rights.py): the registry admin's acts, refused to
    # every other role there.
    ("POST", "/v1/gtin-bindings"): Unscoped("the registry admin binds GTINs (admin only)"),
    ("POST", "/v1/prefix-bindings"): Unscoped(
        "the registry admin binds company prefixes (admin only; tests/api/test_prefixes.py)"
    ),
    ("DELETE", "/v1/prefix-bindings/{prefix}"): Unscoped(
        "the registry admin unbinds company prefixes (admin only; tests/api/test_prefixes.py)"
    ),
    ("GET", "/v1/chain-writes"): Unscoped("the registry admin's view of the outbox (admin only)"),
    ("POST", "/v1/chain-writes/{write_id}/retry"): Unscoped(
        "the registry admin retries a failed chain write (admin only)"
    ),
    ("POST", "/v1/organizations/{organization_id}/revocation"): Unscoped(
        "the registry admin revokes a holder (admin only)"
    ),
    # People and keys (tests/api/test_people.py): each answers about the caller's own
    # organization only; another organization's user or key id is 404 there.
    ("GET", "/v1/users"): Unscoped("the caller's own organization's users"),
    ("POST", "/v1/users"): Unscoped(
        "invites into the caller's organization (registry admin: another's first admin)"
    ),
    ("POST", "/v1/users/{user_id}/disable"): Unscoped("own users only; others' are 404"),
    ("POST", "/v1/users/{user_id}/enable"): Unscoped("own users only; others' are 404"),
    ("POST", "/v1/invitations/accept"): Unscoped("the invitation token is the proof"),
    ("GET", "/v1/api-keys"): Unscoped("the caller's own organization's keys"),
    ("POST", "/v1/api-keys"): Unscoped("a key of the caller's own organization"),
    ("POST", "/v1/api-keys/{key_id}/rotate"): Unscoped("own keys only; others' are 404"),
    ("DELETE", "/v1/api-keys/{key_id}"): Unscoped("own keys only; others' are 404"),
    ("GET", "/v1/audit"): Unscoped("the caller's own organization's audit trail"),
    ("GET", "/v1/organizations/{organization_id}/grants"): Case(
        lambda w, p: req("GET", f"/v1/organizations/{p.auditor['id']}/grants"),
        {
            "admin": ("ok", "ok"),
            "holder": ("denied", "denied"),
            "customs": ("denied", "denied"),
            "auditor": ("ok", "hidden"),
        },
    ),
    ("PUT", "/v1/organizations/{organization_id}/grants"): Case(
        lambda w, p: req(
            "PUT",
            f"/v1/organizations/{p.auditor['id']}/grants",
            json={"holders": [p.holder["id"]]},
        ),
        {
            "admin": ("ok", "ok"),
            "holder": ("denied", "denied"),
            "customs": ("denied", "denied"),
            "auditor": ("denied", "denied"),
        },
    ),
    ("POST", "/v1/batches"): Unscoped("a rights holder enrolls its own batches"),
    ("GET", "/v1/batches/{batch_id}"): Case(
        lambda w, p: req("GET", f"/v1/batches/{p.batch}"),
        {
            "admin": ("ok", "ok"),
            "holder": ("ok", "hidden"),
            "customs": ("hidden", "hidden"),
            "auditor": ("ok", "hidden"),
        },
    ),
    ("GET", "/v1/batches/{batch_id}/tags"): Case(
        lambda w, p: req("GET", f"/v1/batches/{p.batch}/tags"), HOLDER_OR_ADMIN
    ),
    ("GET", "/v1/jobs"): Case(
        lambda w, p: req("GET", "/v1/jobs"),
        {
            "admin": ("seen", "seen"),
            "holder": ("seen", "unseen"),
            "customs": ("unseen", "unseen"),
            "auditor": ("unseen", "unseen"),
        },
        listed=lambda p: p.job,
    ),
    ("GET", "/v1/jobs/{job_id}"): Case(lambda w, p: req("GET", f"/v1/jobs/{p.job}"), OWN_JOB),
    # an enrollment job makes no file: 409 for whoever may see the job, 404 for the others
    ("GET", "/v1/jobs/{job_id}/file"): Case(
        lambda w, p: req("GET", f"/v1/jobs/{p.job}/file"), OWN_JOB
    ),
    ("GET", "/v1/alerts"): Case(
        lambda w, p: req("GET", "/v1/alerts"),
        {
            "admin": ("seen", "seen"),
            "holder": ("seen", "unseen"),
            "customs": ("seen", "unseen"),
            "auditor": ("seen", "unseen"),
        },
        listed=lambda p: p.alert,
        field="alertId",
    ),
    ("GET", "/v1/items/{gtin}/{serial}/custody"): Case(
        lambda w, p: req("GET", f"/v1/items/{p.gtin}/{p.serial(1)}/custody"),
        {
            "admin": ("ok", "ok"),
            "holder": ("ok", "hidden"),
            "customs": ("ok", "ok"),  # another agency's entries withheld: test below
            "auditor": ("ok", "hidden"),
        },
    ),
    ("GET", "/v1/items/{gtin}/{serial}/custody/epcis"): Case(
        lambda w, p: req("GET", f"/v1/items/{p.gtin}/{p.serial(1)}/custody/epcis"),
        {
            "admin": ("ok", "ok"),
            "holder": ("ok", "hidden"),
            "customs": ("ok", "ok"),  # the same rule as the timeline's
            "auditor": ("ok", "hidden"),
        },
    ),
    ("GET", "/v1/case-profiles"): Unscoped("the jurisdiction profiles are shared reference data"),
    ("GET", "/v1/cases"): Case(
        lambda w, p: req("GET", "/v1/cases"), CASE_LIST, listed=lambda p: p.case
    ),
    ("GET", "/v1/cases/{case_id}"): Case(lambda w, p: req("GET", f"/v1/cases/{p.case}"), CASE_READ),
    ("GET", "/v1/cases/{case_id}/attachments"): Case(  # the holder: the images its stage allows
        lambda w, p: req("GET", f"/v1/cases/{p.case}/attachments"), CASE_READ
    ),
    ("GET", "/v1/cases/{case_id}/attachments/{attachment_id}"): Case(
        lambda w, p: req("GET", f"/v1/cases/{p.case}/attachments/{p.image}"),
        {  # a redacted image at the redacted stage: not the auditor's (no images)
            "admin": ("ok", "ok"),
            "holder": ("ok", "hidden"),
            "customs": ("ok", "hidden"),
            "auditor": ("hidden", "hidden"),
        },
    ),
    ("GET", "/v1/cases/{case_id}/epcis"): Case(
        lambda w, p: req("GET", f"/v1/cases/{p.case}/epcis"), OFFICER_OBJECT
    ),
    ("GET", "/v1/cases/{case_id}/documents/{kind}"): Case(  # redacted per reader, like the case
        lambda w, p: req("GET", f"/v1/cases/{p.case}/documents/notice_of_seizure"), CASE_READ
    ),
    ("GET", "/v1/case-notices"): Case(
        lambda w, p: req("GET", "/v1/case-notices"),
        {
            "admin": ("seen", "seen"),
            "holder": ("denied", "denied"),
            "customs": ("seen", "unseen"),
            "auditor": ("denied", "denied"),
        },
        listed=lambda p: p.case,
        field="caseId",
    ),
    ("GET", "/v1/statistics/seizures"): Case(
        lambda w, p: req("GET", "/v1/statistics/seizures", params={"by": "port"}),
        {  # aggregates without parties or holders: an auditor reads every agency's
            "admin": ("seen", "seen"),
            "holder": ("denied", "denied"),
            "customs": ("seen", "unseen"),
            "auditor": ("seen", "seen"),
        },
        listed=lambda p: p.port,
        field="port",
        items=lambda body: [row["group"] for row in body["rows"]],
    ),
    ("GET", "/v1/statistics/seizures/report"): Case(
        lambda w, p: req("GET", "/v1/statistics/seizures/report", params={"year": _fiscal_now()}),
        {  # the same figures as the JSON, as a PDF: its ports are read from its text
            "admin": ("seen", "seen"),
            "holder": ("denied", "denied"),
            "customs": ("seen", "unseen"),
            "auditor": ("seen", "seen"),
        },
        listed=lambda p: p.port,
        field="port",
        body=lambda r: [{"port": port} for port in re.findall(r"\bUS[A-Z]{3}\b", pdf_text(r))],
    ),
    ("GET", "/v1/case-links/{token}"): Unscoped(LINK),
    ("POST", "/v1/case-links/{token}/answer"): Unscoped(LINK),
    ("POST", "/v1/epcis/capture"): Unscoped("each party records its own custody events"),
    ("GET", "/v1/log/checkpoints"): Unscoped("the log's roots: what every party checks by"),
    ("GET", "/v1/log/consistency"): Unscoped("proofs between the log's roots, for every party"),
    ("POST", "/v1/locations"): Unscoped("places are shared reference data"),
    ("GET", "/v1/locations"): Unscoped("places are shared reference data"),
    ("GET", "/v1/trust-bundle"): Unscoped("the chain index, public on chain"),
    ("GET", "/v1/trust-bundle/key"): Unscoped("the gateway's public key"),
    ("GET", "/v1/tag-format"): Unscoped("the public tag format"),
    ("POST", "/v1/devices"): Unscoped("an agency registers its own devices"),
    ("GET", "/v1/devices"): Case(
        lambda w, p: req("GET", "/v1/devices"),
        {
            "admin": ("seen", "seen"),
            "holder": ("denied", "denied"),
            "customs": ("seen", "unseen"),
            "auditor": ("denied", "denied"),
        },
        listed=lambda p: p.device,
        field="deviceId",
    ),
    ("GET", "/v1/devices/{device_id}"): Case(
        lambda w, p: req("GET", f"/v1/devices/{p.device}"), OFFICER_OBJECT
    ),
    ("POST", "/v1/scans/sync"): Unscoped(
        "syncs scans of a device of the calling agency; another agency's device is refused "
        "(403, tests/api/test_devices.py)"
    ),
    ("GET", "/v1/organizations/{organization_id}/webhook"): Case(
        lambda w, p: req("GET", f"/v1/organizations/{p.holder['id']}/webhook"), HOLDER_OR_ADMIN
    ),
    ("GET", "/v1/webhook-deliveries"): Case(
        lambda w, p: req("GET", "/v1/webhook-deliveries"),
        {
            "admin": ("seen", "seen"),
            "holder": ("seen", "unseen"),
            "customs": ("denied", "denied"),
            "auditor": ("denied", "denied"),
        },
        listed=lambda p: p.delivery,
        field="deliveryId",
    ),
    ("GET", "/v1/webhook-deliveries/{delivery_id}"): Case(
        lambda w, p: req("GET", f"/v1/webhook-deliveries/{p.delivery}"), HOLDER_OR_ADMIN
    ),
    # ---- changes, after the reads
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): Case(
        lambda w, p: req("POST", f"/v1/alerts/{p.alert}/acknowledge", json={}), OFFICER_OBJECT
    ),
    ("POST", "/v1/alerts/{alert_id}/resolve"): Case(
        lambda w, p: req("POST", f"/v1/alerts/{p.alert}/resolve", json={"note": "checked"}),
        OFFICER_OBJECT,
    ),
    ("POST", "/v1/batches/{batch_id}/status"): Case(
        lambda w, p: req(
            "POST",
            f"/v1/batches/{p.batch}/status",
            json={"status": "recalled", "serial": p.serial(19)},
        ),
        HOLDER_OR_ADMIN,
    ),
    ("POST", "/v1/cases"): Case(  # from the side's alert: another agency's is not known
        lambda w, p: req("POST", "/v1/cases", json=_case_body(p, source="alert", alertId=p.alert)),
        OFFICER_OBJECT,
    ),
    ("POST", "/v1/cases/{case_id}/actions"): Case(
        lambda w, p: req(
            "POST",
            f"/v1/cases/{p.case}/actions",
            json={"action": "note", "idempotencyKey": "scopes", "params": {"text": "seen"}},
        ),
        CASE_ACT,
    ),
    ("POST", "/v1/cases/{case_id}/attachments"): Case(
        lambda w, p: req(
            "POST",
            f"/v1/cases/{p.case}/attachments",
            files={"file": ("note.pdf", b"%PDF-1.4\ntrailer<<>>\n%%EOF\n", "application/pdf")},
        ),
        OFFICER_OBJECT,
    ),
    ("POST", "/v1/cases/{case_id}/actions/{action_id}/approve"): Case(
        lambda w, p: req(
            "POST",
            f"/v1/cases/{p.case}/actions/{p.seizure}/approve",
            json={"idempotencyKey": "scopes"},
        ),
        OFFICER_OBJECT,
    ),
    ("DELETE", "/v1/cases/{case_id}/parties/{role}"): Case(
        lambda w, p: req("DELETE", f"/v1/cases/{p.case}/parties/importer"), OFFICER_OBJECT
    ),
    ("POST", "/v1/jobs/{job_id}/cancel"): Case(
        lambda w, p: req("POST", f"/v1/jobs/{p.job}/cancel"), OWN_JOB
    ),
    ("POST", "/v1/jobs/{job_id}/retry"): Case(
        lambda w, p: req("POST", f"/v1/jobs/{p.job}/retry"), OWN_JOB
    ),
    ("POST", "/v1/devices/{device_id}/revoke"): Case(
        lambda w, p: req("POST", f"/v1/devices/{p.device}/revoke"), OFFICER_OBJECT
    ),
    ("PUT", "/v1/organizations/{organization_id}/webhook"): Case(
        lambda w, p: req(
            "PUT",
            f"/v1/organizations/{p.holder['id']}/webhook",
            json={"url": w.endpoint(p.prefix)},
        ),
        HOLDER_OR_ADMIN,
    ),
    ("POST", "/v1/organizations/{organization_id}/webhook/rotate-secret"): Case(
        lambda w, p: req("POST", f"/v1/organizations/{p.holder['id']}/webhook/rotate-secret"),
        HOLDER_OR_ADMIN,
    ),
    ("POST", "/v1/organizations/{organization_id}/webhook/test"): Case(
        lambda w, p: req("POST", f"/v1/organizations/{p.holder['id']}/webhook/test"),
        HOLDER_OR_ADMIN,
    ),
    ("POST", "/v1/webhook-deliveries/{delivery_id}/redeliver"): Case(
        lambda w, p: req("POST", f"/v1/webhook-deliveries/{p.delivery}/redeliver"),
        HOLDER_OR_ADMIN,
    ),
    ("DELETE", "/v1/organizations/{organization_id}/webhook"): Case(
        lambda w, p: req("DELETE", f"/v1/organizations/{p.holder['id']}/webhook"),
        HOLDER_OR_ADMIN,
        after=_restore_endpoint,
    ),
    # ---- verification records scans: last (other items than those read above)
    ("POST", "/v1/verify"): Case(
        lambda w, p: req("POST", "/v1/verify", json={"gtin": p.gtin, "serial": p.serial(2)}),
        PRODUCT_VERIFY,
    ),
    # A batch answers 200 with an error per item: a rights holder's scan of another brand
    # is that item's 404, so the item's answer is what is seen or not.
    ("POST", "/v1/verify/batch"): Case(
        lambda w, p: req(
            "POST", "/v1/verify/batch", json={"items": [{"gtin": p.gtin, "serial": p.serial(2)}]}
        ),
        PRODUCT_VERIFY_BATCH,
        listed=lambda p: p.gtin,
        field="gtin",
        items=lambda body: [a["answer"]["item"] for a in body["answers"] if a["status"] == 200],
    ),
    ("GET", "/v1/gs1/verify/gtin/{gtin}/lot/{lot}/ser/{serial}"): Case(
        lambda w, p: req("GET", _gs1(p, p.serial(2)), params={"exp": "281231"}),
        PRODUCT_VERIFY,
    ),
    ("GET", "/v1/gs1/verify/gtin/{rest:path}"): Case(
        lambda w, p: req("GET", _gs1(p, "A%2FB"), params={"exp": "281231"}), PRODUCT_VERIFY
    ),
    # Guides (tests/api/test_guides.py): the holder's and every customs agency's to read.
    ("GET", "/v1/guide-categories"): Unscoped("the fixed table of product categories"),
    ("POST", "/v1/guide-imports"): Unscoped(
        "a holder imports guides of its own products only (another's: 422 naming the line)"
    ),
    ("GET", "/v1/guides"): Case(
        lambda w, p: req("GET", "/v1/guides", params={"gtin": p.gtin}),
        {
            "admin": ("denied", "denied"),
            "holder": ("seen", "unseen"),
            "customs": ("seen", "seen"),
            "auditor": ("denied", "denied"),
        },
        listed=lambda p: p.guide,
        field="guideId",
    ),
    ("GET", "/v1/guides/{guide_id}"): Case(
        lambda w, p: req("GET", f"/v1/guides/{p.guide}"), GUIDE_READ
    ),
    ("GET", "/v1/guides/{guide_id}/history"): Case(
        lambda w, p: req("GET", f"/v1/guides/{p.guide}/history"), GUIDE_READ
    ),
    ("GET", "/v1/guides/{guide_id}/pdf"): Case(
        lambda w, p: req("GET", f"/v1/guides/{p.guide}/pdf"), GUIDE_READ
    ),
    ("GET", "/v1/guides/{guide_id}/photos/{photo_id}"): Case(
        lambda w, p: req("GET", f"/v1/guides/{p.guide}/photos/{p.photo}"), GUIDE_READ
    ),
    ("POST", "/v1/guides"): Case(  # the same content again: the same guide (200)
        lambda w, p: req("POST", "/v1/guides", json=_guide_body(p)),
        {**GUIDE_WRITE, "holder": ("ok", "denied")},
    ),
    ("PUT", "/v1/guides/{guide_id}"): Case(  # the same content: no new version
        lambda w, p: req("PUT", f"/v1/guides/{p.guide}", json=_guide_body(p)), GUIDE_WRITE
    ),
    ("POST", "/v1/guides/{guide_id}/photos"): Case(  # the same photo again: stored once
        lambda w, p: req("POST", f"/v1/guides/{p.guide}/photos", content=PNG), GUIDE_WRITE
    ),
    ("POST", "/v1/guides/{guide_id}/submit"): Case(  # published: 409 for its holder
        lambda w, p: req("POST", f"/v1/guides/{p.guide}/submit", json={}), GUIDE_WRITE
    ),
    ("POST", "/v1/guides/{guide_id}/review"): Case(  # published: 409 for customs
        lambda w, p: req("POST", f"/v1/guides/{p.guide}/review", json={}), GUIDE_REVIEW
    ),
    ("POST", "/v1/guides/{guide_id}/publish"): Case(  # published already: a replay
        lambda w, p: req("POST", f"/v1/guides/{p.guide}/publish", json={}), GUIDE_REVIEW
    ),
}


def test_every_v1_route_is_in_the_scope_registry(stack: Stack) -> None:
    """A route added under /v1 without an entry in ROUTES fails here: state its scope.
    Routes are taken from the routers the app includes (`api.routes.ROUTERS`, those hidden
    from the schema too) and from the app's OpenAPI document."""
    routes = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/v1")
        for method in route.methods - {"HEAD", "OPTIONS"}
    }
    app: Any = stack.client.app
    routes |= {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    }
    assert len(routes) > 30
    missing = sorted(routes - set(ROUTES))
    stale = sorted(set(ROUTES) - routes)
    assert not missing, f"routes without a scope entry in tests/api/test_scopes.py: {missing}"
    assert not stale, f"scope entries for routes that do not exist: {stale}"


# ------------------------------------------------------------------------------- the world


def _party(stack: Stack, side: str, tmp: Path) -> Party:
    own = side == "own"
    holder = stack.org("Acme Pharma" if own else "Rival Inc", "rights_holder", f"TMK {side}")
    agency = stack.org(AGENCY_A if own else AGENCY_B, "customs")
    auditor = stack.org(f"Auditor {side}", "auditor")
    party = Party(holder, agency, auditor, GTIN if own else OTHER_GTIN, "SN" if own else "RV")
    key = holder["apiKey"]
    party.batch = stack.enroll(
        key,
        gtin=party.gtin,
        serials=[party.serial(n) for n in range(20)],
        route_policy=POLICY,
        expiry="281231",
    )["batchId"]
    job = stack.client.post(
        "/v1/batches",
        json={"gtin": party.gtin, "lot": "J1", "serials": [f"J{n}" for n in range(30)]},
        headers=stack.headers(key),
    )
    assert job.status_code == 202, job.text
    party.job = job.json()["jobId"]
    stack.grant(auditor, [holder["id"]])
    device, _ = init_device(tmp / side)
    r = stack.client.post(
        "/v1/devices",
        json={"name": "handheld", "publicKey": device.public_key},
        headers=stack.headers(agency["apiKey"]),
    )
    assert r.status_code == 201, r.text
    party.device = r.json()["deviceId"]
    r = stack.client.put(
        f"/v1/organizations/{holder['id']}/webhook",
        json={"url": f"https://hooks.{party.prefix}.example/borderledger"},
        headers=stack.headers(key),
    )
    assert r.status_code == 201, r.text
    r = stack.client.post(
        f"/v1/organizations/{holder['id']}/webhook/test", headers=stack.headers(key)
    )
    assert r.status_code == 202, r.text
    party.delivery = r.json()["deliveryId"]
    _publish_guide(stack, party)
    return party


def _publish_guide(stack: Stack, party: Party) -> None:
    """The holder writes its product's guide with a photo; the side's agency publishes it."""
    holder, agency = stack.headers(party.holder["apiKey"]), stack.headers(party.agency["apiKey"])
    r = stack.client.post("/v1/guides", json=_guide_body(party), headers=holder)
    assert r.status_code == 201, r.text
    party.guide = r.json()["guideId"]
    r = stack.client.post(f"/v1/guides/{party.guide}/photos", content=PNG, headers=holder)
    assert r.status_code == 201, r.text
    party.photo = r.json()["photoId"]
    for step, headers in (("submit", holder), ("review", agency), ("publish", agency)):
        r = stack.client.post(f"/v1/guides/{party.guide}/{step}", json={}, headers=headers)
        assert r.status_code == 200, r.text


def _open_case(stack: Stack, party: Party) -> None:
    """The party's agency opens a case on the party's holder's rights."""
    body = _case_body(party, rightsHolders=[party.holder["id"]])
    r = stack.client.post("/v1/cases", json=body, headers=stack.headers(party.agency["apiKey"]))
    assert r.status_code == 201, r.text
    party.case = r.json()["id"]
    headers = stack.headers(party.agency["apiKey"])
    body = {"action": "request_help", "idempotencyKey": "help"}  # the redacted stage
    r = stack.client.post(f"/v1/cases/{party.case}/actions", json=body, headers=headers)
    assert r.status_code == 201, r.text
    r = stack.client.post(
        f"/v1/cases/{party.case}/attachments",
        files={"file": ("goods.png", PNG, "image/png")},
        data={"kind": "image_redacted"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    party.image = r.json()["attachmentId"]


def _seize(stack: Stack, party: Party) -> None:
    """Detained, and seized by two officers of the agency: a seizure the statistics count,
    approved by the agency's key the matrix uses (so its approval is a replay)."""
    with Session(stack.gateway.engine) as session:
        org = session.get(Organization, party.agency["id"])
        assert org is not None
        second = new_api_key(session, org)
        session.commit()
    key = party.agency["apiKey"]
    url = f"/v1/cases/{party.case}/actions"
    for k, action, status in ((key, "detain", 201), (second, "seize", 202)):
        body = {"action": action, "idempotencyKey": action}
        r = stack.client.post(url, json=body, headers=stack.headers(k))
        assert r.status_code == status, r.text
    party.seizure = r.json()["actionId"]
    r = stack.client.post(
        f"{url}/{party.seizure}/approve", json={"idempotencyKey": "a"}, headers=stack.headers(key)
    )
    assert r.status_code == 201, r.text


def _divert(stack: Stack, party: Party, serial: str) -> str:
    """The party's agency scans the party's item outside its markets: a diversion alert."""
    answer = stack.verify(
        party.agency["apiKey"],
        gtin=party.gtin,
        serial=serial,
        location={"unlocode": "USLAX"},
    )
    [finding] = answer["findings"]
    return str(finding["alertId"])


@pytest.fixture
def world(anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[World]:
    with running_stack(
        anvil,
        database,
        tmp_path,
        sync_enroll_limit=25,  # the 30-serial batches become jobs
        anchor_organization=AGENCY_A,
        anchor_every_entries=1,
    ) as stack:
        sides = {side: _party(stack, side, tmp_path) for side in SIDES}
        stack.sync()
        for party in sides.values():
            party.alert = _divert(stack, party, party.serial(1))
        stack.sync()
        for party, port in zip(sides.values(), ("USLAX", "USJFK"), strict=True):
            party.port = port
            _open_case(stack, party)
        engine = stack.gateway.engine
        with Session(engine) as session:  # each agency's inbox gets its case's reminder
            due = session.exec(select(CaseClock.remind_at).where(CaseClock.name == "decide")).all()
        assert case_clocks.process_due(engine, now=max(due).replace(tzinfo=UTC)).reminders >= 2
        for party in sides.values():
            _seize(stack, party)
        own = sides["own"]
        keys = {
            "admin": stack.admin_key,
            "holder": own.holder["apiKey"],
            "customs": own.agency["apiKey"],
            "auditor": own.auditor["apiKey"],
        }
        yield World(stack, keys, sides)


def _outcome(case: Case, party: Party, r: Any) -> str:
    if r.status_code == 403:
        return "denied"
    if r.status_code == 404:
        return "hidden"
    if r.status_code >= 400 and r.status_code not in (409, 422):
        return f"status {r.status_code}: {r.text[:200]}"
    if case.listed is None:
        return "ok"
    wanted = case.listed(party)
    body = case.body(r) if case.body is not None else r.json()
    found = case.items(body) if case.items is not None else body
    return "seen" if any(item.get(case.field) == wanted for item in found) else "unseen"


def test_each_role_sees_only_its_own_on_every_route(world: World) -> None:
    """Every role, every scoped route, its own side's object and the other side's (ROUTES)."""
    stack = world.stack
    failures: list[str] = []
    tried = 0
    for (method, path), case in ROUTES.items():
        if isinstance(case, Unscoped):
            continue
        # Another party's object first: a refused request must change nothing there.
        for side_index in (1, 0):
            side = SIDES[side_index]
            party = world.sides[side]
            for role in ROLES:
                request = case.target(world, party)
                assert request["method"] == method, (method, path)
                r = stack.client.request(
                    request.pop("method"),
                    request.pop("url"),
                    headers=stack.headers(world.keys[role]),
                    **request,
                )
                tried += 1
                got = _outcome(case, party, r)
                wanted = case.expect[role][side_index]
                if got != wanted:
                    failures.append(f"{method} {path} as {role} on {side}'s: {got}, not {wanted}")
                if case.after is not None:
                    case.after(world, party)
    assert not failures, "\n".join(failures)
    assert tried == 8 * sum(isinstance(c, Case) for c in ROUTES.values())


# ----------------------------------------------------------------- what the matrix cannot show


def test_another_agencys_entries_are_withheld_and_still_prove_inclusion(world: World) -> None:
    """Agency B reads the timeline of an item only agency A scanned: A's scan is shown as its
    leaf hash, and the custody audit still verifies it against the anchored checkpoint; once
    B scanned the item itself, it reads the whole timeline."""
    stack, own = world.stack, world.sides["own"]
    b = world.sides["other"].agency["apiKey"]
    serial = own.serial(3)
    stack.verify(own.agency["apiKey"], gtin=GTIN, serial=serial, location={"unlocode": "NLRTM"})
    stack.gateway.scans.flush()
    stack.gateway.custody.anchorer.run_once(force=True)
    stack.sync()

    def timeline(key: str) -> dict[str, Any]:
        r = stack.client.get(f"/v1/items/{GTIN}/{serial}/custody", headers=stack.headers(key))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    full = timeline(own.agency["apiKey"])
    [shown] = full["entries"]
    assert shown["withheld"] is False and shown["record"]["serial"] == serial
    seen_by_b = timeline(b)
    [withheld] = seen_by_b["entries"]
    assert withheld["withheld"] is True and withheld["kind"] == "withheld"
    assert withheld["record"] is None and withheld["time"] is None and withheld["v"] is None
    assert withheld["leafHash"] == shown["leafHash"]
    assert withheld["inclusionProof"] == shown["inclusionProof"] != []
    assert withheld["previous"] == {full["item"]["key"]: None}
    [checkpoint] = [c for c in seen_by_b["checkpoints"] if c["size"] == withheld["checkpointSize"]]
    assert verify_inclusion(
        bytes.fromhex(withheld["leafHash"][2:]),
        withheld["logIndex"],
        checkpoint["size"],
        proof_from_hex(withheld["inclusionProof"]),
        bytes.fromhex(checkpoint["root"][2:]),
    )
    leaf = entries.entry_leaf(shown["kind"], shown["record"], shown["previous"], shown["v"])
    assert "0x" + leaf.hex() == withheld["leafHash"]
    view = Web3ChainView(stack.node.url, stack.registry.address)
    report = audit_timeline(seen_by_b, view, registry=stack.registry.address, strict=True)
    assert report.ok, report.to_dict()
    assert any("its leaf hash in checkpoint" in c.detail for c in report.checks)
    # The EPCIS export leaves the withheld entry out.
    r = stack.client.get(
        f"/v1/items/{GTIN}/{serial}/custody", params={"format": "epcis"}, headers=stack.headers(b)
    )
    assert r.status_code == 200 and r.json()["epcisBody"]["eventList"] == []
    # Once B scanned the item, everything about it is B's to read.
    stack.verify(b, gtin=GTIN, serial=serial)
    stack.gateway.scans.flush()
    assert not any(e["withheld"] for e in timeline(b)["entries"])


def test_an_agency_sees_alerts_on_items_it_scanned_and_those_its_scans_raised(
    world: World,
) -> None:
    stack, own, other = world.stack, world.sides["own"], world.sides["other"]
    b = other.agency["apiKey"]

    def listed(key: str) -> set[str]:
        r = stack.client.get("/v1/alerts", headers=stack.headers(key))
        assert r.status_code == 200, r.text
        return {a["alertId"] for a in r.json()}

    assert listed(b) == {other.alert}
    r = stack.client.post(f"/v1/alerts/{own.alert}/acknowledge", json={}, headers=stack.headers(b))
    assert r.status_code == 404
    stack.verify(b, gtin=GTIN, serial=own.serial(1))  # B scans the item A's alert is about
    stack.gateway.scans.flush()
    assert listed(b) == {other.alert, own.alert}
    r = stack.client.post(f"/v1/alerts/{own.alert}/acknowledge", json={}, headers=stack.headers(b))
    assert r.status_code == 200, r.text
    with Session(stack.gateway.engine) as session:
        raised = {a.alert_id: a.raised_by for a in session.exec(select(Alert)).all()}
    assert raised == {own.alert: own.agency["id"], other.alert: other.agency["id"]}


def test_rights_holders_verify_their_own_products_only(world: World) -> None:
    stack, own, other = world.stack, world.sides["own"], world.sides["other"]
    holder = own.holder["apiKey"]
    r = stack.client.post(
        "/v1/verify",
        json={"gtin": OTHER_GTIN, "serial": other.serial(4)},
        headers=stack.headers(holder),
    )
    assert r.status_code == 404 and OTHER_GTIN in r.json()["error"]["message"]
    unknown = "00614141000012"
    r = stack.client.post(
        "/v1/verify", json={"gtin": unknown, "serial": "X1"}, headers=stack.headers(holder)
    )
    assert r.status_code == 404  # nobody's GTIN is not the holder's either
    assert stack.verify(holder, gtin=GTIN, serial=own.serial(4))["verdict"]
    stack.gateway.scans.flush()
    with Session(stack.gateway.engine) as session:
        mine = session.exec(
            select(ScanEvent).where(ScanEvent.organization_id == own.holder["id"])
        ).all()
    assert [s.gtin for s in mine] == [GTIN]  # the refused scans were not recorded


def test_auditor_grants_are_the_admins_to_set(world: World) -> None:
    stack, own, other = world.stack, world.sides["own"], world.sides["other"]
    admin = stack.headers(stack.admin_key)
    url = f"/v1/organizations/{own.auditor['id']}/grants"
    for body, words in [
        ({"all": True, "holders": [own.holder["id"]]}, "not both"),
        ({"holders": [own.agency["id"]]}, "not rights holders"),
        ({"holders": [99999]}, "not rights holders"),
        ({"everything": True}, "everything"),
    ]:
        r = stack.client.put(url, json=body, headers=admin)
        assert r.status_code == 422 and words in r.text, (body, r.text)
    r = stack.client.put(
        f"/v1/organizations/{own.holder['id']}/grants", json={"all": True}, headers=admin
    )
    assert r.status_code == 422 and "not an auditor" in r.text
    auditor = stack.headers(own.auditor["apiKey"])
    assert stack.client.get(url, headers=auditor).json() == {
        "organizationId": own.auditor["id"],
        "all": False,
        "holders": [own.holder["id"]],
    }

    def batch_status(batch: str) -> int:
        return stack.client.get(f"/v1/batches/{batch}", headers=auditor).status_code

    assert (batch_status(own.batch), batch_status(other.batch)) == (200, 404)
    assert stack.client.put(url, json={"all": True}, headers=admin).json()["all"] is True
    assert (batch_status(own.batch), batch_status(other.batch)) == (200, 200)
    assert stack.client.put(url, json={}, headers=admin).json()["holders"] == []
    assert (batch_status(own.batch), batch_status(other.batch)) == (404, 404)
    r = stack.client.get("/v1/alerts", headers=auditor)
    assert r.status_code == 200 and r.json() == []


def test_alerts_stored_before_the_migration_keep_who_raised_them(
    database: tuple[str, str | None],
) -> None:
    """0010_scopes fills `raised_by` of existing alerts from the newest scan in their
    evidence, so an agency keeps seeing the alerts its scans raised before the upgrade."""
    import sqlalchemy as sa

    from api.db import make_engine
    from api.migrate import upgrade

    url, schema = database
    engine = make_engine(url, schema)
    upgrade(engine, "0009")
    now = "2026-12-01 10:00:00"
    with engine.begin() as c:
        for org_id, name in ((1, "NL Customs"), (2, "DE Zoll")):
            c.execute(
                sa.text(
                    "INSERT INTO organizations (id, name, role, created_at) "
                    "VALUES (:id, :name, 'CUSTOMS', :now)"
                ),
                {"id": org_id, "name": name, "now": now},
            )
        for scan_id, org_id, at in (("s-a", 1, "2026-12-01 09:00:00"), ("s-b", 2, now)):
            c.execute(
                sa.text(
                    "INSERT INTO scan_events (scan_id, organization_id, input_kind, scanned_at, "
                    "recorded_at, verdict, reasons, index_block, origin) VALUES (:s, :o, "
                    "'typed', :at, :at, 'GENUINE', '[]', 1, 'online')"
                ),
                {"s": scan_id, "o": org_id, "at": at},
            )
        for alert_id, evidence in (("a-1", '["s-a", "s-b"]'), ("a-2", '["s-a"]'), ("a-3", "[]")):
            c.execute(
                sa.text(
                    "INSERT INTO alerts (alert_id, rule, reason_code, severity, gtin, location, "
                    "evidence, detail, status, created_at, updated_at) VALUES (:a, 'clone', "
                    "'CLONE_IMPOSSIBLE_TRAVEL', 'critical', :g, 'NLRTM', :e, '', 'open', :now, "
                    ":now)"
                ),
                {"a": alert_id, "g": GTIN, "e": evidence, "now": now},
            )
    upgrade(engine)
    with engine.connect() as c:
        rows = dict(c.execute(sa.text("SELECT alert_id, raised_by FROM alerts")).all())
    engine.dispose()
    assert rows == {"a-1": 2, "a-2": 1, "a-3": None}
