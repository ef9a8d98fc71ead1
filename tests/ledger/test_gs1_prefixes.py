"""GS1 company prefixes (issue 15): the rule a prefix follows, and a GTIN's holder resolved by
the registry's rule in Python (`ledger.gs1.resolve_holder`: gateway, trust bundle, offline
scanner) and in the pages' offline verifier (`ownerOf` in api/pages/web/lib/verdict.js), which
must agree with each other and with `resolveGtinHolder` (tests/chain/test_registry_prefixes.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ledger.errors import InvalidCompanyPrefix
from ledger.gs1 import company_prefixes_of, resolve_holder, validate_company_prefix

REPO_ROOT = Path(__file__).resolve().parents[2]
A, B, C = "0xA", "0xB", "0xC"
GTIN_OWNERS = {"04012345000030": C}
PREFIX_OWNERS = {"401234": A, "40123450": B, "950600": A, "401234500001": C}
CASES = {
    "04012345000030": (C, None),  # bound on its own: wins over both prefixes
    "14012345000037": (B, "40123450"),  # its case (indicator 1): the longest prefix
    "04012346000039": (A, "401234"),
    "04012345000016": (C, "401234500001"),  # a 12-digit prefix: one GTIN
    "09506000134352": (A, "950600"),
    "09999999999994": (None, None),
    "4012345000030": (None, None),  # not a GTIN-14: no prefix applies
}


def test_prefix_rule_names_the_problem() -> None:
    assert validate_company_prefix("0012345") == "0012345"
    for value, words in (
        ("12345", "has 5 digits"),
        ("61414a", "only digits"),
        ("0000012", "GTIN-8"),
        ("0412345", "restricted circulation"),
        ("2999999", "restricted circulation"),
        ("0551234", "coupons"),
        ("9801234", "refund receipts"),
    ):
        with pytest.raises(InvalidCompanyPrefix, match=words):
            validate_company_prefix(value)


def test_resolve_holder() -> None:
    assert len(company_prefixes_of("04012345000030")) == 7
    for gtin, expected in CASES.items():
        assert resolve_holder(gtin, GTIN_OWNERS, PREFIX_OWNERS) == expected, gtin
    assert resolve_holder("09506000134352", {}, {}) == (None, None)


def test_offline_page_verifier_resolves_alike() -> None:
    script = """
import { ownerOf } from "./api/pages/web/lib/verdict.js";
const input = JSON.parse(require_stdin());
function require_stdin() { return process.argv[1]; }
const bundle = { gtinOwners: new Map(Object.entries(input.gtins)),
                 prefixOwners: new Map(Object.entries(input.prefixes)) };
console.log(JSON.stringify(input.cases.map((g) => ownerOf(bundle, g) ?? null)));
"""
    payload = json.dumps({"gtins": GTIN_OWNERS, "prefixes": PREFIX_OWNERS, "cases": list(CASES)})
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script, payload],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == [holder for holder, _ in CASES.values()]
