"""What the case tests share: the organizations a case involves, a case opened through the
API with a realistic shipment, and the action, read and upload calls. Each test file keeps
only what is its own (a document's text, an attachment's bytes)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from api.models import Organization
from api.orgs import new_api_key
from tests.stack import Stack

NAME = "Shenzhen Example Trading Co"
AWB = "AWB 123-45678901"
LINES = [
    {"category": "watches_jewelry", "quantity": 40, "unitMsrpCents": 25_000},
    {"category": "handbags_wallets", "quantity": 10, "unitMsrpCents": 90_000},
]


def case_world(stack: Stack) -> dict[str, Any]:
    """Two brands, the officer's agency (with a second officer's key, for approvals) and
    another agency. Used as each case test file's `world` fixture."""
    holder = stack.org("Watchmaker SA", "rights_holder", "TMK 21-1")
    other = stack.org("Other Brand", "rights_holder", "TMK 22-2")
    officer = stack.org("CBP LAX", "customs")
    agency = stack.org("CBP JFK", "customs")
    with Session(stack.gateway.engine) as session:
        org = session.get(Organization, officer["id"])
        assert org is not None
        second = new_api_key(session, org)
        session.commit()
    return {
        "holder": holder["apiKey"],
        "holder_id": holder["id"],
        "other": other["apiKey"],
        "other_id": other["id"],
        "officer": officer["apiKey"],
        "second": second,
        "agency": agency["apiKey"],
    }


def open_case(stack: Stack, key: str, **overrides: Any) -> dict[str, Any]:
    """A US trademark case for an express shipment of watches and bags, as `key` opens it
    (201 asserted); `overrides` replace fields of the request body."""
    body = {
        "profile": "us-trademark",
        "mode": "express",
        "port": "USLAX",
        "origin": "CN",
        "reference": AWB,
        "description": "wrist watches bearing the mark",
        "presentedAt": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "lines": LINES,
        "parties": [{"role": "importer", "name": NAME, "address": "1 Harbour Rd", "country": "HK"}],
        **overrides,
    }
    r = stack.client.post("/v1/cases", json=body, headers=stack.headers(key))
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def act(stack: Stack, key: str, case: str, action: str, idem: str, **params: Any) -> Any:
    """The response to applying `action` (idempotency key `idem`) as `key`."""
    return stack.client.post(
        f"/v1/cases/{case}/actions",
        json={"action": action, "idempotencyKey": idem, "params": params},
        headers=stack.headers(key),
    )


def applied(stack: Stack, key: str, case: str, action: str, idem: str, **params: Any) -> Any:
    """`act` that must be applied (201) or requested for approval (202): its JSON."""
    r = act(stack, key, case, action, idem, **params)
    assert r.status_code in (201, 202), r.text
    return r.json()


def get_case(stack: Stack, key: str, case: str) -> Any:
    return stack.client.get(f"/v1/cases/{case}", headers=stack.headers(key))


def upload(
    stack: Stack, key: str, case: str, name: str, data: bytes, media: str, **form: str
) -> Any:
    """The response to attaching `data` as file `name` of type `media` to the case."""
    return stack.client.post(
        f"/v1/cases/{case}/attachments",
        files={"file": (name, io.BytesIO(data), media)},
        data=form or None,
        headers=stack.headers(key),
    )
