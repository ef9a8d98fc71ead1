"""The verdict engine on its own: the decision order, the signer rule's edges, the tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ledger.models import Status
from ledger.verdicts import (
    DESCRIPTIONS,
    OFFLINE_ONLY,
    STATUS_REASONS,
    SUMMARIES,
    SUSPECT_REASONS,
    Reason,
    Verdict,
    decide,
    finding_reasons,
    signer_reason,
    status_reason,
    summary,
)

R = Reason


@pytest.mark.parametrize(
    ("reasons", "status", "verdict"),
    [
        ([R.SIGNATURE_VALID, R.SERIAL_IN_BATCH], Status.ACTIVE, Verdict.GENUINE),
        ([R.SERIAL_IN_BATCH, R.SIGNATURE_MISSING], Status.ACTIVE, Verdict.GENUINE_UNSIGNED),
        ([R.MEMBERSHIP_NOT_CHECKED, R.SIGNATURE_MISSING], Status.ACTIVE, Verdict.UNVERIFIED),
        ([R.MEMBERSHIP_NOT_CHECKED, R.SIGNATURE_VALID], Status.ACTIVE, Verdict.GENUINE),
        ([R.SIGNATURE_MISSING], Status.ACTIVE, Verdict.COUNTERFEIT_SUSPECT),
        ([R.SERIAL_NOT_VERIFIABLE], Status.ACTIVE, Verdict.COUNTERFEIT_SUSPECT),
        # a suspect reason outranks every status; a status outranks a valid signature
        ([R.SIGNER_REVOKED, R.ITEM_STOLEN], Status.STOLEN, Verdict.COUNTERFEIT_SUSPECT),
        ([R.SIGNATURE_VALID, R.ITEM_DESTROYED], Status.DESTROYED, Verdict.COUNTERFEIT_SUSPECT),
        ([R.SIGNATURE_VALID, R.ITEM_STOLEN], Status.STOLEN, Verdict.STOLEN),
        ([R.SIGNATURE_VALID, R.BATCH_RECALLED], Status.RECALLED, Verdict.RECALLED),
        ([R.SERIAL_IN_BATCH, R.ITEM_DECOMMISSIONED], Status.DECOMMISSIONED, Verdict.DECOMMISSIONED),
        # findings and staleness never change the verdict
        ([R.SIGNATURE_VALID, R.CLONE_SUSPECT, R.INDEX_STALE], Status.ACTIVE, Verdict.GENUINE),
        (
            [R.BUNDLE_STALE, R.MEMBERSHIP_NOT_CHECKED, R.DIVERSION_SUSPECT],
            Status.ACTIVE,
            Verdict.UNVERIFIED,
        ),
    ],
)
def test_decision_order(reasons: list[Reason], status: Status, verdict: Verdict) -> None:
    assert decide(reasons, status) == verdict


@dataclass(frozen=True)
class Key:
    holder: str
    added_at: int
    revoked_at: int | None


@pytest.mark.parametrize(
    ("key", "registered_at", "reason"),
    [
        (None, 100, R.SIGNER_UNKNOWN),
        (Key("0xB", 10, None), 100, R.SIGNER_FOREIGN),
        (Key("0xA", 10, None), 5, R.SIGNATURE_VALID),  # never revoked: valid whenever
        (Key("0xA", 10, 0), 5, R.SIGNATURE_VALID),  # 0 is how the chain says "never"
        (Key("0xA", 10, 20), 9, R.SIGNER_REVOKED),
        (Key("0xA", 10, 20), 10, R.SIGNATURE_VALID),
        (Key("0xA", 10, 20), 19, R.SIGNATURE_VALID),
        (Key("0xA", 10, 20), 20, R.SIGNER_REVOKED),
    ],
)
def test_signer_rule(key: Key | None, registered_at: int, reason: Reason) -> None:
    assert signer_reason(key, "0xA", registered_at) == reason


def test_tables_cover_the_vocabulary() -> None:
    assert set(DESCRIPTIONS) == set(Reason)
    assert set(SUMMARIES) == set(Verdict)
    assert OFFLINE_ONLY.isdisjoint(SUSPECT_REASONS)
    assert status_reason(Status.ACTIVE, True) is None
    assert {status for status, _ in STATUS_REASONS} == set(Status) - {Status.ACTIVE}
    assert status_reason(Status.RECALLED, True) == R.BATCH_RECALLED
    assert status_reason(Status.RECALLED, False) == R.ITEM_RECALLED
    assert summary(Verdict.GENUINE) == SUMMARIES[Verdict.GENUINE]
    assert "membership in the batch not checked" in summary(Verdict.GENUINE, offline=True)


def test_findings_add_each_reason_once_in_order() -> None:
    classes = ["status", "diversion", "clone", "diversion", "probing"]
    assert finding_reasons([], classes) == ["DIVERSION_SUSPECT", "CLONE_SUSPECT"]
    assert finding_reasons(["CLONE_SUSPECT"], classes) == ["DIVERSION_SUSPECT"]
    assert finding_reasons(["SIGNATURE_VALID"], ["volume", "status"]) == []
