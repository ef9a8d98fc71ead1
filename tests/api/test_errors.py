"""Domain errors → HTTP: every class of the one tree has its status, none answers 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.errors import PayloadTooLarge, Unauthenticated, status_for
from chain.node import LocalNode
from detector import DetectorError, InvalidScanError, PolicyError, UnknownLocationError
from detector.dbstore import ConcurrencyError
from detector.errors import ContentionError, InvalidLocationError
from ledger.errors import (
    BatchConflict,
    BorderLedgerError,
    ChainError,
    Conflict,
    ContractReverted,
    InvalidEpcisDocument,
    InvalidInput,
    KeystoreError,
    NotFound,
    PermissionDenied,
    RpcUnavailable,
)
from tests.stack import running_stack

CASES: list[tuple[BorderLedgerError, int, str]] = [
    (InvalidInput("x"), 422, "invalid_input"),
    (InvalidEpcisDocument("x", ["$.a"]), 422, "invalid_input"),
    (PayloadTooLarge("x"), 413, "payload_too_large"),
    (Unauthenticated("x"), 401, "unauthenticated"),
    (PermissionDenied("x"), 403, "forbidden"),
    (NotFound("x"), 404, "not_found"),
    (Conflict("x"), 409, "conflict"),
    (BatchConflict("x"), 409, "conflict"),
    (ContractReverted("BatchExists"), 409, "chain_rejected"),
    (ChainError("x"), 503, "chain_unavailable"),
    (RpcUnavailable("x"), 503, "chain_unavailable"),
    (KeystoreError("x"), 503, "key_unavailable"),
    (UnknownLocationError("x"), 422, "invalid_input"),
    (InvalidLocationError("x"), 422, "invalid_input"),
    (InvalidScanError("x"), 422, "invalid_input"),
    (PolicyError(["a", "b"]), 422, "invalid_input"),
    (ContentionError("x"), 409, "conflict"),
    (ConcurrencyError("x"), 409, "conflict"),
    (DetectorError("x"), 400, "bad_request"),
    (BorderLedgerError("x"), 400, "bad_request"),
]


@pytest.mark.parametrize(("error", "status", "code"), CASES, ids=lambda c: type(c).__name__)
def test_every_domain_error_has_a_status_and_none_is_500(
    error: BorderLedgerError, status: int, code: str
) -> None:
    assert status_for(error) == (status, code)


def test_detector_errors_join_the_one_tree() -> None:
    for cls in (DetectorError, UnknownLocationError, InvalidScanError, PolicyError):
        assert issubclass(cls, BorderLedgerError)
        assert issubclass(cls, ValueError)  # callers that catch ValueError still do
    assert issubclass(ConcurrencyError, DetectorError) and issubclass(ConcurrencyError, Conflict)
    assert not issubclass(ConcurrencyError, InvalidInput)


def test_a_broken_signing_key_setting_is_503_not_422(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    with running_stack(anvil, database, tmp_path, bundle_signing_key="zz") as stack:
        officer = stack.org("NL Customs", "customs")
        stack.sync()
        for path, key in (("/v1/trust-bundle/key", None), ("/v1/trust-bundle", officer["apiKey"])):
            headers = stack.headers(key) if key else {}
            r = stack.client.get(path, headers=headers)
            assert r.status_code == 503, (path, r.text)
            error = r.json()["error"]
            assert error["code"] == "key_unavailable"
            assert "signing key not available" in error["message"]
            assert "BORDERLEDGER_BUNDLE_SIGNING_KEY" in error["message"]
