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
    FindingFacts,
    Pending,
    Place,
    Reason,
    Verdict,
    decide,
    finding_reasons,
    signer_reason,
    status_reason,
    summary,
    with_findings,
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


SHANGHAI, LOS_ANGELES = Place("CNSHA", "Shanghai"), Place("USLAX", "Los Angeles")
T0 = 1_760_000_000.0
TRAVEL = FindingFacts("clone", "CLONE_IMPOSSIBLE_TRAVEL", LOS_ANGELES, T0 + 1, SHANGHAI, T0)
DIVERTED = FindingFacts("diversion", "DIVERSION_MARKET", LOS_ANGELES, T0, markets=("DE", "NL"))
VOLUME = FindingFacts("volume", "VOLUME_EXCEEDED", LOS_ANGELES, T0)


@pytest.mark.parametrize(
    ("verdict", "findings", "weighed"),
    [
        (Verdict.GENUINE, [TRAVEL], Verdict.COUNTERFEIT_SUSPECT),
        (Verdict.GENUINE_UNSIGNED, [TRAVEL], Verdict.COUNTERFEIT_SUSPECT),
        (Verdict.UNVERIFIED, [TRAVEL], Verdict.COUNTERFEIT_SUSPECT),
        (Verdict.GENUINE, [DIVERTED, TRAVEL], Verdict.COUNTERFEIT_SUSPECT),
        (Verdict.GENUINE, [DIVERTED], Verdict.GENUINE_DIVERTED),
        (Verdict.GENUINE_UNSIGNED, [DIVERTED], Verdict.GENUINE_UNSIGNED),
        (Verdict.GENUINE, [VOLUME], Verdict.GENUINE),
        (Verdict.GENUINE, [], Verdict.GENUINE),
        (Verdict.STOLEN, [TRAVEL], Verdict.STOLEN),
        (Verdict.RECALLED, [DIVERTED], Verdict.RECALLED),
    ],
)
def test_findings_weigh_on_the_verdict(
    verdict: Verdict, findings: list[FindingFacts], weighed: Verdict
) -> None:
    assert with_findings(verdict, findings) == weighed


def test_summaries_say_why_from_the_facts() -> None:
    """The big word and its sentence never say plain genuine against a finding."""
    assert summary(Verdict.COUNTERFEIT_SUSPECT, findings=[DIVERTED, TRAVEL]) == (
        "Potential copy: this code was already scanned at CNSHA (Shanghai) 1 second ago; "
        "the same item cannot be in both places. Hold the item."
    )
    late = FindingFacts("clone", "SEQUENCE_ROUTE_ORDER", SHANGHAI, T0, Place("NLRTM"), T0 + 7_200)
    assert summary(Verdict.COUNTERFEIT_SUSPECT, findings=[late]) == (
        "Potential copy: this code was also scanned at NLRTM 2 hours later; the item cannot "
        "have gone back along its route unseen. Hold the item."
    )
    places = FindingFacts("clone", "CLONE_TOO_MANY_PLACES", LOS_ANGELES, T0)
    assert "more places than its route allows" in summary(
        Verdict.COUNTERFEIT_SUSPECT, findings=[places]
    )
    assert summary(Verdict.GENUINE_DIVERTED, findings=[DIVERTED]) == (
        "Genuine, diverted: made for the DE, NL markets, scanned at USLAX (Los Angeles). "
        "Gray-market goods: check the recordation before release."
    )
    assert summary(Verdict.GENUINE_UNSIGNED, findings=[DIVERTED]).startswith(
        "Registered serial, diverted: made for the DE, NL markets"
    )
    # a suspect without a clone finding keeps its sentence; status verdicts too
    assert (
        summary(Verdict.COUNTERFEIT_SUSPECT, findings=[DIVERTED])
        == SUMMARIES[Verdict.COUNTERFEIT_SUSPECT]
    )
    assert summary(Verdict.STOLEN, findings=[TRAVEL]) == SUMMARIES[Verdict.STOLEN]
    for findings in ([TRAVEL], [DIVERTED], [DIVERTED, TRAVEL]):
        said = summary(with_findings(Verdict.GENUINE, findings), findings=findings)
        assert not said.startswith("Genuine:"), said


def test_a_pending_registration_is_not_suspect() -> None:
    reasons = [R.REGISTRATION_PENDING, R.INDEX_STALE]
    assert decide(reasons, Status.ACTIVE) == Verdict.PENDING
    assert R.REGISTRATION_PENDING not in SUSPECT_REASONS
    assert summary(Verdict.PENDING, pending=Pending(42, 41)) == (
        "Registration pending: registered at block 42; this gateway's index is at block 41 "
        "and catching up. Scan again in a few seconds."
    )
    assert "not yet on chain" in summary(Verdict.PENDING, pending=Pending(None, 41))
