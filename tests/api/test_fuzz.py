"""Property-based fuzzing of the gateway.

1. Every operation in the OpenAPI document, with whatever schemathesis generates (valid and
   invalid bodies, parameters and headers): never a 5xx.

   Requests carry a real key: the admin's for organization management (only the admin gets
   past the role check there), a rights holder's for everything else (it may enroll, read its
   batches, change statuses and verify, so generated input reaches the deepest code). A real
   batch is enrolled first and its id replaces the generated one in about half of the cases,
   so tag downloads and status changes are fuzzed against a batch that exists, not only
   against 404s. Generated `Authorization` / `X-API-Key` headers are replaced: key handling
   is covered by tests/api/test_auth.py, and a generated key only ever reaches the 401 branch.
   No operation is excluded.

   schemathesis' own pytest plugin (`schemathesis.pytest.from_fixture`) does not run under
   pytest 9 (it reads `Function._nodeid`), so each operation gets a Hypothesis test built
   from `APIOperation.as_strategy` (positive and negative generation), checked with
   schemathesis' `not_a_server_error`.

2. Schema-driven data almost never forms a valid GTIN, serial or tag, so enrollment and
   verification are also fuzzed with plausible input (GS1 CSET 82 text with a few characters
   that are not, check-digit-valid GTINs, real and forged signatures, mutated tag URIs) and
   checked against an oracle: the ledger's own validators and the enrolled state.
"""

from __future__ import annotations

import csv
import io
import secrets
import zlib
from typing import Any, cast

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from api.crypto import unseal
from api.gateway import Gateway
from api.main import create_app
from api.models import Organization
from api.verification import Scanned
from ledger.batch import BatchInput
from ledger.digital_link import DigitalLink, parse_digital_link
from ledger.errors import InvalidInput
from ledger.gs1 import CSET82, normalize_gtin
from ledger.tags import TagDomain, TagSigner
from tests.stack import GTIN, Stack

MAX_EXAMPLES = 50
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
#: The plausible-input tests are cheap per example and their space is larger.
PLAUSIBLE = settings(SETTINGS, max_examples=150)


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation; the document does not depend on the gateway."""
    document = create_app(gateway=cast(Gateway, object())).openapi()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    ]


OPERATIONS = _operations()


@pytest.fixture
def fuzz_keys(stack: Stack) -> dict[str, Any]:
    holder = stack.org("Fuzz Holder", "rights_holder")
    customs = stack.org("Fuzz Customs", "customs")
    batch = stack.enroll(holder["apiKey"], serials=[f"F{i}" for i in range(8)])
    stack.sync()
    stack.gateway.settings.max_upload_bytes = 64 * 1024
    return {
        "admin": stack.admin_key,
        "holder": holder["apiKey"],
        "customs": customs["apiKey"],
        "batchId": batch["batchId"],
    }


def test_every_operation_is_fuzzed() -> None:
    paths = {path for _, path in OPERATIONS}
    for expected in (
        "/healthz",
        "/readyz",
        "/v1/tag-format",
        "/v1/organizations",
        "/v1/organizations/me",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/tags",
        "/v1/batches/{batch_id}/status",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/retry",
        "/v1/verify",
        "/v1/devices",
        "/v1/devices/{device_id}/revoke",
        "/v1/scans/sync",
    ):
        assert expected in paths, expected


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(stack: Stack, fuzz_keys: dict[str, Any], method: str, path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", stack.client.app)
    operation = schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    admin_only = ("/v1/organizations", "/v1/prefix-bindings")  # bad input reaches the checks
    key = fuzz_keys["admin"] if path.startswith(admin_only) else fuzz_keys["holder"]
    if path.startswith(("/v1/devices", "/v1/scans")):
        key = fuzz_keys["customs"]  # devices and offline sync are for customs agencies
    seen: dict[int, int] = {}

    @given(case=strategy)
    @SETTINGS
    def run(case: Any) -> None:  # a schemathesis Case
        headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() not in ("authorization", "x-api-key")
        }
        case.headers = {**headers, "Authorization": f"Bearer {key}"}
        if case.path_parameters and "batch_id" in case.path_parameters:
            generated = str(case.path_parameters["batch_id"])
            if zlib.crc32(generated.encode()) % 2 == 0:
                case.path_parameters["batch_id"] = fuzz_keys["batchId"]
        response = case.call_and_validate(checks=[not_a_server_error])
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    run()
    assert seen and all(status < 500 for status in seen), seen


# ------------------------------------------------------------------- plausible input

ALPHABET = "".join(sorted(CSET82))
#: Characters outside CSET 82 that real files and scanners produce.
NOT_CSET82 = " \t\n\r\x00é€#[]~\ufeff"
VALID_TOKEN = st.text(alphabet=ALPHABET, min_size=1, max_size=20)
ANY_TOKEN = st.one_of(
    VALID_TOKEN,
    VALID_TOKEN,
    st.text(alphabet=ALPHABET + NOT_CSET82, min_size=0, max_size=24),
)
RIVAL_GTIN = "00012345600012"
GTINS = st.sampled_from(
    [
        GTIN,
        GTIN[1:],
        GTIN,
        "09506000134353",
        RIVAL_GTIN,
        "4006381333931",
        "12345670",
        "0950600013435",
    ]
)


def _scan_count(stack: Stack) -> int:
    with stack.gateway.engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM scan_events")).scalar() or 0)


def _batch_count(stack: Stack) -> int:
    with stack.gateway.engine.connect() as connection:
        return int(
            connection.execute(sa.text("SELECT count(*) FROM gateway_batches")).scalar() or 0
        )


def test_enrollment_with_plausible_input(stack: Stack) -> None:
    """Any batch the ledger's validator accepts is enrolled (201), retried (200), refused as
    another holder's GTIN (403) or as a changed lot (409); anything it refuses is a 422 and
    writes nothing. JSON and CSV alike."""
    holder = stack.org("Acme", "rights_holder", gtins=(GTIN, "04006381333931", "00000012345670"))
    rival = stack.org("Rival", "rights_holder", gtins=(RIVAL_GTIN,))
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": RIVAL_GTIN, "lot": "R", "serials": ["R1"]},
        headers=stack.headers(rival["apiKey"]),
    )
    assert r.status_code == 201, r.text
    enrolled: dict[tuple[str, str], tuple[list[str], str | None]] = {}
    outcomes: dict[int, int] = {}

    valid = st.tuples(
        st.sampled_from([GTIN, GTIN[1:], "4006381333931", "12345670", RIVAL_GTIN]),
        st.one_of(st.sampled_from(["L1", "L2", "L/3"]), VALID_TOKEN),
        st.lists(VALID_TOKEN, min_size=1, max_size=10, unique=True),
        st.sampled_from([None, "281231"]),
    )
    anything = st.tuples(
        GTINS,
        ANY_TOKEN,
        st.lists(ANY_TOKEN, min_size=0, max_size=10),
        st.sampled_from([None, "281231", "241399", "2812", ""]),
    )

    @given(
        batch=st.integers(0, 2).flatmap(lambda n: anything if n == 0 else valid),
        as_csv=st.booleans(),
    )
    @PLAUSIBLE
    def run(batch: tuple[str, str, list[str], str | None], as_csv: bool) -> None:
        gtin, lot, serials, expiry = batch
        key = stack.headers(holder["apiKey"])
        if as_csv:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["serial"])
            writer.writerows([s] for s in serials)
            query = {"gtin": gtin, "lot": lot, **({"expiry": expiry} if expiry is not None else {})}
            r = stack.client.post(
                "/v1/batches",
                params=query,
                content=buffer.getvalue().encode(),
                headers={**key, "Content-Type": "text/csv"},
            )
            # the CSV reader trims values and skips blank lines
            sent = [s.strip() for s in serials if s.strip()]
        else:
            body: dict[str, Any] = {"gtin": gtin, "lot": lot, "serials": serials}
            if expiry is not None:
                body["expiry"] = expiry
            r = stack.client.post("/v1/batches", json=body, headers=key)
            sent = serials
        outcomes[r.status_code] = outcomes.get(r.status_code, 0) + 1
        assert r.status_code < 500, r.text
        try:
            expected: BatchInput | None = BatchInput.create(gtin, lot, sent, expiry)
        except InvalidInput:
            expected = None
        if expected is None:
            assert r.status_code == 422, (r.status_code, r.text)
            assert r.json()["error"]["code"] == "invalid_input"
            return
        ident = (expected.gtin, expected.lot)
        if expected.gtin == RIVAL_GTIN:
            assert r.status_code == 403, r.text
        elif ident in enrolled:
            same = enrolled[ident] == (expected.serials, expected.expiry)
            assert r.status_code == (200 if same else 409), (r.status_code, r.text)
        else:
            assert r.status_code == 201, r.text
            enrolled[ident] = (expected.serials, expected.expiry)
        if r.status_code in (200, 201):
            answer = r.json()
            assert answer["count"] == len(expected) and answer["registration"] == "done"
            assert (answer["gtin"], answer["lot"]) == ident

    run()
    assert _batch_count(stack) == len(enrolled) + 1
    assert {201, 403, 409, 422} <= set(outcomes), outcomes  # the oracle saw every branch


def test_verification_with_plausible_input(stack: Stack) -> None:
    """A tag or typed input the ledger's parser accepts gets a verdict, anything else a 422;
    only the holder's own signature over an enrolled identity is GENUINE, and every 200 is
    recorded as a scan."""
    holder = stack.org("Acme", "rights_holder")
    officer = stack.org("Customs", "customs")
    serials = ["A1", "a/b", "50%", "x,y", "Z"]
    stack.enroll(holder["apiKey"], lot="L/1", serials=serials)
    stack.sync()
    with stack.gateway.engine.connect() as connection:
        sealed = connection.execute(
            sa.select(Organization.signer_key_encrypted).where(  # type: ignore[call-overload]
                Organization.name == "Acme"
            )
        ).scalar_one()
    domain = TagDomain(stack.registry.chain_id, stack.registry.address)
    signer = TagSigner(unseal(stack.gateway.settings.secret_key, sealed), domain)
    real_tags = [row["uri"] for row in stack.tags(holder["apiKey"], "0x" + _bid(GTIN, "L/1"))]
    before = _scan_count(stack)
    answered = 0
    verdicts: dict[str, int] = {}

    enrolled = st.tuples(
        st.sampled_from([GTIN, GTIN[1:]]), st.just("L/1"), st.sampled_from(serials)
    )
    anything = st.tuples(
        GTINS,
        st.one_of(st.just("L/1"), ANY_TOKEN),
        st.one_of(st.sampled_from(serials), ANY_TOKEN),
    )
    identity = st.integers(0, 1).flatmap(lambda n: anything if n == 0 else enrolled)
    signature = st.sampled_from(["holder", "none", "random", "short"])
    tag_input = st.builds(
        lambda ident, sig, host: ("tag", ident, sig, host),
        identity,
        signature,
        st.sampled_from(["id.example", "x.y:8443", "a"]),
    )
    typed_input = st.builds(
        lambda ident, with_lot: ("typed", ident, with_lot, None),
        identity,
        st.booleans(),
    )
    # a real tag with one character inserted, deleted or replaced
    mutated = st.builds(
        lambda uri, at, char, how: ("mutated", (uri, at, char, how), None, None),
        st.sampled_from(real_tags),
        st.integers(min_value=0, max_value=300),
        st.sampled_from(ALPHABET + NOT_CSET82 + "%=&?"),
        st.sampled_from(["insert", "delete", "replace"]),
    )

    @given(st.one_of(tag_input, typed_input, mutated))
    @PLAUSIBLE
    def run(item: tuple[str, Any, Any, Any]) -> None:
        nonlocal answered
        kind, ident, extra, host = item
        genuine_ident = False
        if kind == "mutated":
            uri, at, char, how = ident
            at = at % len(uri)
            if how == "insert":
                uri = uri[:at] + char + uri[at:]
            elif how == "delete":
                uri = uri[:at] + uri[at + 1 :]
            else:
                uri = uri[:at] + char + uri[at + 1 :]
            body: dict[str, Any] = {"tag": uri}
        elif kind == "tag":
            gtin, lot, serial = ident
            sig: bytes | None = None
            if extra == "holder":
                sig = _sign(signer, gtin, serial, lot)
            elif extra == "random":
                sig = secrets.token_bytes(65)
            elif extra == "short":
                sig = secrets.token_bytes(64)
            body = {"tag": DigitalLink(gtin, lot, serial, sig, host).to_uri()}
        else:
            gtin, lot, serial = ident
            body = {"gtin": gtin, "serial": serial, **({"lot": lot} if extra else {})}

        r = stack.client.post("/v1/verify", json=body, headers=stack.headers(officer["apiKey"]))
        assert r.status_code < 500, r.text
        try:
            if "tag" in body:
                link = parse_digital_link(body["tag"])
                scanned: tuple[str, str | None, str, bytes | None] = (
                    link.gtin,
                    link.lot,
                    link.serial,
                    link.signature,
                )
            else:
                typed = Scanned.from_fields(body["gtin"], body["serial"], body.get("lot"))
                scanned = (typed.gtin, typed.lot, typed.serial, None)
        except (InvalidInput, ValueError):
            assert r.status_code == 422, (body, r.status_code, r.text)
            return
        assert r.status_code == 200, (body, r.text)
        answered += 1
        result = r.json()
        verdicts[result["verdict"]] = verdicts.get(result["verdict"], 0) + 1
        gtin, lot, serial, sig = scanned
        genuine_ident = gtin == GTIN and lot in (None, "L/1") and serial in serials
        holder_signed = (
            sig is not None and lot is not None and sig == _sign(signer, gtin, serial, lot)
        )
        if genuine_ident and holder_signed:
            assert result["verdict"] == "GENUINE", (body, result)
        elif genuine_ident and sig is None:
            assert result["verdict"] == "GENUINE_UNSIGNED", (body, result)
        else:
            assert result["verdict"] == "COUNTERFEIT_SUSPECT", (body, result)

    run()
    stack.sync()
    assert _scan_count(stack) == before + answered
    assert set(verdicts) == {"GENUINE", "GENUINE_UNSIGNED", "COUNTERFEIT_SUSPECT"}, verdicts


def _sign(signer: TagSigner, gtin: str, serial: str, lot: str) -> bytes:
    try:
        return signer.sign(normalize_gtin(gtin), serial, lot)
    except InvalidInput:
        return signer.sign(gtin, serial, lot)  # a tag for an invalid GTIN: refused anyway


def _bid(gtin: str, lot: str) -> str:
    from ledger.batch import batch_id_of

    return batch_id_of(gtin, lot).hex()
