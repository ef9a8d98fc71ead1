"""GS1 Lightweight Messaging verification (US DSCSA VRS requests): every failure reason, the
additionalInfo values, corrUUID echo, roles, malformed requests, scans recorded, OpenAPI."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from api.gs1 import (
    AdditionalInfo,
    FailureReason,
    VerificationData,
    parse_request,
    parse_yymmdd,
    response,
    timestamp,
    validate_gln,
)
from api.models import BatchTree, GatewayBatch, ScanEvent
from ledger.errors import InvalidInput
from tests.stack import GTIN, Stack, api_error

UNKNOWN_GTIN = "09506000134376"  # valid check digit, never enrolled
OTHER_GTIN = "09506000134383"  # enrolled, then made unprovable (as if by another gateway)
CORR = "08dd5e1b-78e7-4dee-9f55-e69f5edf099b"
REQ_GLN = "0614141000012"  # hypothetical GLN with a valid check digit
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def _url(gtin: str, lot: str, serial: str) -> str:
    return f"/v1/gs1/verify/gtin/{gtin}/lot/{lot}/ser/{serial}"


def _params(exp: str | None = "281231", **extra: str) -> dict[str, str]:
    params = {
        "linkType": "verificationService",
        "context": "dscsaSaleableReturn",
        "reqGLN": REQ_GLN,
        "corrUUID": CORR,
        **extra,
    }
    if exp is not None:
        params["exp"] = exp
    return params


def _get(stack: Stack, key: str | None, url: str, params: dict[str, str] | None = None) -> Any:
    headers = stack.headers(key) if key else {}
    return stack.client.get(
        url, params=params if params is not None else _params(), headers=headers
    )


def _data(
    stack: Stack, key: str, lot: str, serial: str, exp: str = "281231", gtin: str = GTIN
) -> dict[str, Any]:
    r = _get(stack, key, _url(gtin, lot, serial), _params(exp))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"verificationTimestamp", "responderGLN", "data", "corrUUID"}, body
    assert body["corrUUID"] == CORR
    data: dict[str, Any] = body["data"]
    return data


def _set_status(stack: Stack, key: str, batch_id: str, status: str, serial: str | None) -> None:
    body = {"status": status} if serial is None else {"status": status, "serial": serial}
    r = stack.client.post(f"/v1/batches/{batch_id}/status", json=body, headers=stack.headers(key))
    assert r.status_code == 202 and r.json()["status"] == "done", r.text


def _gs1_scans(stack: Stack) -> list[ScanEvent]:
    stack.sync()
    with Session(stack.gateway.engine) as session:
        return list(session.exec(select(ScanEvent).where(ScanEvent.input_kind == "gs1")).all())


# ------------------------------------------------------------------------ through the API


def test_every_failure_reason_and_additional_info(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org("US CBP", "customs")
    key = holder["apiKey"]
    l1 = stack.enroll(
        key, lot="L1", serials=[*(f"S{i}" for i in range(10)), "S/10"], expiry="281231"
    )
    l2 = stack.enroll(key, lot="L2", serials=[f"T{i}" for i in range(5)], expiry="291231")
    stack.enroll(key, lot="L3", serials=[f"E{i}" for i in range(5)], expiry="200131")
    stack.enroll(key, lot="L4", serials=[f"N{i}" for i in range(5)])  # no expiry on record
    stack.sync()
    _set_status(stack, key, l1["batchId"], "stolen", "S3")
    _set_status(stack, key, l1["batchId"], "recalled", "S4")
    _set_status(stack, key, l1["batchId"], "decommissioned", "S5")
    _set_status(stack, key, l1["batchId"], "destroyed", "S6")
    _set_status(stack, key, l2["batchId"], "recalled", None)
    stack.sync()
    o = officer["apiKey"]

    # Matches: verified true, nothing else in data.
    r = _get(stack, o, _url(GTIN, "L1", "S0"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"] == {"verified": True}
    assert body["responderGLN"] == stack.gateway.settings.responder_gln
    assert body["corrUUID"] == CORR
    assert TIMESTAMP.fullmatch(body["verificationTimestamp"]), body
    assert _data(stack, o, "L1", "S0", exp="281200") == {"verified": True}  # DD 00 = month end
    assert _data(stack, o, "L1", "S%2F10") == {"verified": True}  # '/' is GS1 CSET 82

    def failed(reason: FailureReason, info: AdditionalInfo | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"verified": False, "verificationFailureReason": reason.value}
        if info is not None:
            out["additionalInfo"] = info.value
        return out

    # Mismatches of the product identifier.
    assert _data(stack, o, "L1", "S999") == failed(FailureReason.NO_MATCH_GTIN_SERIAL)
    assert _data(stack, o, "L2", "S0") == failed(FailureReason.NO_MATCH_GTIN_SERIAL_LOT)
    assert _data(stack, o, "NOLOT", "S0") == failed(FailureReason.NO_MATCH_GTIN_SERIAL_LOT)
    assert _data(stack, o, "L2", "S0", exp="291231") == failed(
        FailureReason.NO_MATCH_GTIN_SERIAL_LOT_EXPIRY
    )
    assert _data(stack, o, "L1", "S0", exp="281130") == failed(
        FailureReason.NO_MATCH_GTIN_SERIAL_EXPIRY
    )
    # No expiry enrolled: the gateway cannot vouch for the one presented.
    assert _data(stack, o, "L4", "N0") == failed(FailureReason.NO_MATCH_GTIN_SERIAL_EXPIRY)

    # Statuses set by the rights holder.
    assert _data(stack, o, "L1", "S3") == failed(
        FailureReason.NOT_FOR_REDISTRIBUTION, AdditionalInfo.ILLEGITIMATE
    )
    assert _data(stack, o, "L1", "S4") == {"verified": True, "additionalInfo": "Recalled"}
    assert _data(stack, o, "L2", "T1", exp="291231") == {
        "verified": True,
        "additionalInfo": "Recalled",
    }
    for decommissioned_or_destroyed in ("S5", "S6"):
        assert _data(stack, o, "L1", decommissioned_or_destroyed) == failed(
            FailureReason.NOT_FOR_REDISTRIBUTION, AdditionalInfo.SUSPECT
        )
    assert _data(stack, o, "L3", "E0", exp="200131") == {
        "verified": True,
        "additionalInfo": "Expired",
    }

    # A GTIN nobody registered: 404, the guideline's answer for a GTIN not served here.
    not_found = api_error(_get(stack, o, _url(UNKNOWN_GTIN, "L1", "S0")), 404, "gtin_not_found")
    assert not_found["data"] == {"verified": False, "verificationFailureReason": "GTIN_not_found"}
    assert not_found["responderGLN"] and not_found["verificationTimestamp"].endswith("Z")

    # Every well-formed request was recorded, with the verdict the ledger gives.
    scans = _gs1_scans(stack)
    assert len(scans) == 16
    assert all(s.organization_id is not None and s.gtin for s in scans)
    by_serial_lot = {(s.serial, s.lot): s for s in scans if s.gtin == GTIN}
    assert by_serial_lot[("S/10", "L1")].verdict == "GENUINE_UNSIGNED"
    assert by_serial_lot[("S3", "L1")].verdict == "STOLEN"
    assert by_serial_lot[("S999", "L1")].verdict == "COUNTERFEIT_SUSPECT"
    assert "SERIAL_UNKNOWN" in by_serial_lot[("S999", "L1")].reasons
    assert by_serial_lot[("S0", "NOLOT")].verdict == "COUNTERFEIT_SUSPECT"
    unknown = [s for s in scans if s.gtin == UNKNOWN_GTIN]
    assert len(unknown) == 1 and unknown[0].reasons[0] == "GTIN_UNKNOWN"
    assert by_serial_lot[("S0", "L1")].batch_id == l1["batchId"]


def test_serials_this_gateway_cannot_check_are_no_reason_provided(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder")
    officer = stack.org("US CBP", "customs")
    batch = stack.enroll(holder["apiKey"], lot="X1", serials=["A1", "A2"], gtin=OTHER_GTIN)
    stack.sync()
    # As if another gateway had enrolled it: on chain, but no secret or tree here.
    with Session(stack.gateway.engine) as session:
        session.exec(sa.delete(BatchTree).where(BatchTree.batch_id == batch["batchId"]))
        session.exec(sa.delete(GatewayBatch).where(GatewayBatch.batch_id == batch["batchId"]))
        session.commit()
    stack.gateway.catalog._provable.clear()
    expected = {"verified": False, "verificationFailureReason": "No_reason_provided"}
    assert _data(stack, officer["apiKey"], "X1", "A1", gtin=OTHER_GTIN) == expected
    assert _data(stack, officer["apiKey"], "X2", "A1", gtin=OTHER_GTIN) == expected


def test_roles_and_authentication(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder")
    customs = stack.org("US CBP", "customs")
    auditor = stack.org("Audit Office", "auditor")
    stack.enroll(holder["apiKey"], lot="L1", serials=["S0"], expiry="281231")
    stack.sync()
    url = _url(GTIN, "L1", "S0")

    api_error(_get(stack, None, url), 401, "unauthenticated")
    api_error(_get(stack, "blk_unknown-key-000000000000000000000000", url), 401, "unauthenticated")
    r = stack.client.get(url, params=_params(), headers={"X-API-Key": "nope"})
    api_error(r, 401, "unauthenticated")
    api_error(_get(stack, auditor["apiKey"], url), 403, "forbidden")
    # Authentication and role come before input checks: no key, bad GTIN → still 401/403.
    bad = _url("12345678901234", "L1", "S0")
    api_error(_get(stack, None, bad), 401, "unauthenticated")
    api_error(_get(stack, auditor["apiKey"], bad), 403, "forbidden")

    for key in (customs["apiKey"], holder["apiKey"], stack.admin_key):
        r = _get(stack, key, url)
        assert r.status_code == 200 and r.json()["data"] == {"verified": True}, r.text
        r = stack.client.get(url, params=_params(), headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
    assert len(_gs1_scans(stack)) == 6  # refused requests are not recorded


def test_optional_parameters_and_corr_uuid(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder")
    stack.enroll(holder["apiKey"], lot="L1", serials=["S0"], expiry="281231")
    stack.sync()
    key = holder["apiKey"]
    url = _url(GTIN, "L1", "S0")

    r = _get(stack, key, url, {"exp": "281231"})  # only exp: defaults for the rest
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"verified": True} and "corrUUID" not in r.json()

    upper = CORR.upper()
    for link_type in ("verificationService", "gs1:verificationService"):
        params = {"exp": "281231", "linkType": link_type, "corrUUID": upper}
        r = _get(stack, key, url, params)
        assert r.status_code == 200 and r.json()["corrUUID"] == upper, r.text
    # GTIN-13 is padded to GTIN-14; VRS 1.3 extras (ctrlPossessAtt, …) are ignored.
    r = _get(
        stack,
        key,
        _url(GTIN[1:], "L1", "S0"),
        _params(ctrlPossessAtt="true", email="a@b.example", telephone="123"),
    )
    assert r.status_code == 200 and r.json()["data"] == {"verified": True}, r.text
    r = _get(stack, key, url, _params(context="dscsaSuspectInvestigation"))
    assert r.status_code == 200, r.text


def test_malformed_requests_are_400_json_and_not_recorded(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder")
    stack.enroll(holder["apiKey"], lot="L1", serials=["S0"], expiry="281231")
    stack.sync()
    key = holder["apiKey"]
    good = _url(GTIN, "L1", "S0")
    bad_paths = [
        _url("09506000134351", "L1", "S0"),  # wrong check digit
        _url("0950600013435X", "L1", "S0"),  # not digits
        _url("123456", "L1", "S0"),  # not a GTIN length
        _url(GTIN, "L1", "S" * 21),  # serial longer than 20
        _url(GTIN, "L1", "S%200"),  # space: outside CSET 82
        _url(GTIN, "L%231", "S0"),  # '#': outside CSET 82
        _url(GTIN, "L" * 21, "S0"),  # lot longer than 20
        _url(GTIN, "L1", "S%FF"),  # not UTF-8
        _url(GTIN, "L1", "S%2F%FF"),  # not UTF-8, through the encoded-slash path
        f"/v1/gs1/verify/gtin/{GTIN}/lot/L1",  # no serial
        f"/v1/gs1/verify/gtin/{GTIN}/ser/S0/lot/L1",  # wrong order
        f"/v1/gs1/verify/gtin/{GTIN}/lot/L1/ser/S0/extra",
    ]
    for path in bad_paths:
        api_error(_get(stack, key, path), 400, "invalid_input")
    bad_params = [
        _params(exp=None),  # exp is required
        _params(exp=""),
        _params(exp="2812"),
        _params(exp="28123100"),
        _params(exp="abcdef"),
        _params(exp="281301"),  # month 13
        _params(exp="280230"),  # 30 February
        _params(exp="281232"),
        _params(linkType="pip"),
        _params(context="bad context!"),
        _params(reqGLN="123"),
        _params(reqGLN="0614141000013"),  # wrong check digit
        _params(corrUUID="not-a-uuid"),
        _params(corrUUID="x" * 5000),
    ]
    for params in bad_params:
        api_error(_get(stack, key, good, params), 400, "invalid_input")
    assert _gs1_scans(stack) == []


def test_openapi_describes_the_answer(stack: Stack) -> None:
    doc = stack.client.get("/openapi.json").json()
    op = doc["paths"]["/v1/gs1/verify/gtin/{gtin}/lot/{lot}/ser/{serial}"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {
        "gtin",
        "lot",
        "serial",
        "exp",
        "linkType",
        "context",
        "reqGLN",
        "corrUUID",
    }
    assert {"200", "400", "401", "403", "404"} <= set(op["responses"])
    schemas = doc["components"]["schemas"]
    assert set(schemas["VerificationResponse"]["properties"]) == {
        "verificationTimestamp",
        "responderGLN",
        "data",
        "corrUUID",
    }
    assert set(schemas["VerificationData"]["properties"]) == {
        "verified",
        "verificationFailureReason",
        "additionalInfo",
    }
    assert "No_match_GTIN_Serial_Lot_Expiry" in schemas["FailureReason"]["enum"]
    assert "Recalled" in schemas["AdditionalInfo"]["enum"]
    assert not any("{rest" in path for path in doc["paths"])


# ----------------------------------------------------------------------- domain functions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("281231", date(2028, 12, 31)),
        ("281200", date(2028, 12, 31)),
        ("280200", date(2028, 2, 29)),
        ("270200", date(2027, 2, 28)),
        ("000229", date(2000, 2, 29)),
        ("991231", date(1999, 12, 31)),  # more than 50 years ahead → previous century
        ("750101", date(2075, 1, 1)),
    ],
)
def test_parse_yymmdd(text: str, expected: date) -> None:
    assert parse_yymmdd(text, today=date(2025, 6, 1)) == expected


@pytest.mark.parametrize(
    "text", ["", "28123", "2812310", "28-231", "281301", "280001", "270229", "280431"]
)
def test_parse_yymmdd_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_yymmdd(text, today=date(2025, 6, 1))


def test_gln_and_request_validation() -> None:
    assert validate_gln(REQ_GLN) == REQ_GLN
    for bad in ("0614141000013", "061414100001", "06141410000120", "061414100001A"):
        with pytest.raises(InvalidInput):
            validate_gln(bad)
    request = parse_request(GTIN[1:], "L1", "S0", "281231", None, None, None, None)
    assert request.scanned.gtin == GTIN and request.context == "dscsaSaleableReturn"
    with pytest.raises(InvalidInput, match="exp"):
        parse_request(GTIN, "L1", "S0", None)


def test_response_shape() -> None:
    now = datetime(2025, 1, 31, 10, 0, 0, 123456, tzinfo=UTC)
    assert timestamp(now) == "2025-01-31T10:00:00.123Z"
    data = VerificationData(
        verified=False,
        verification_failure_reason=FailureReason.NOT_FOR_REDISTRIBUTION,
        additional_info=AdditionalInfo.ILLEGITIMATE,
    )
    out = response(data, "0614141000012", None, now).model_dump(by_alias=True, exclude_none=True)
    assert out == {
        "verificationTimestamp": "2025-01-31T10:00:00.123Z",
        "responderGLN": "0614141000012",
        "data": {
            "verified": False,
            "verificationFailureReason": "Not_for_re-distribution",
            "additionalInfo": "Illegitimate",
        },
    }
