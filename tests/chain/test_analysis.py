"""The Slither gate of `make lint` (chain.analysis): its verdict rules, and the real run."""

from __future__ import annotations

import json

from chain.analysis import TRIAGE, Finding, judge, run_slither

ACCEPTED = [{"check": "timestamp", "function": "isSignerValidFor", "reason": "stored times"}]


def test_accepted_low_finding_passes() -> None:
    assert judge([Finding("timestamp", "Low", "isSignerValidFor", "d")], ACCEPTED) == []


def test_medium_or_high_never_passes_even_if_listed() -> None:
    accepted = [*ACCEPTED, {"check": "reentrancy-eth", "function": "f", "reason": "no"}]
    findings = [
        Finding("timestamp", "Low", "isSignerValidFor", "d"),
        Finding("reentrancy-eth", "High", "f", "reentrant"),
    ]
    (problem,) = judge(findings, accepted)
    assert "High finding" in problem


def test_unlisted_and_stale_entries_fail() -> None:
    problems = judge([Finding("naming-convention", "Informational", "g", "name")], ACCEPTED)
    assert any("not in" in p for p in problems)
    assert any("no longer reports" in p for p in problems)


def test_registry_has_no_high_or_medium_and_every_finding_is_accepted() -> None:
    findings = run_slither()
    assert not [f for f in findings if f.impact in ("High", "Medium")], findings
    assert judge(findings, json.loads(TRIAGE.read_text())["accepted"]) == []
