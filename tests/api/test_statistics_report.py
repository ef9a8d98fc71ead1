"""The PDF year report: its text read back (pypdf) holds the totals of hand-built case sets."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.case_sim import insert_year
from cases.simulate import SimulatedYear
from tests.api.test_case_statistics import HAND_BUILT, _at, _line
from tests.pdf import pdf_text
from tests.stack import Stack, api_error

REPORT = "/v1/statistics/seizures/report"


def _case(index: int, mode: str, origin: str | None, port: str, outcome: str, at: str) -> Any:
    return {
        "index": index,
        "mode": mode,
        "origin": origin,
        "port": port,
        "outcome": outcome,
        "right": "copyright",
        "outcome_at": _at(at),
        "presented_at": _at(at),
    }


#: Another agency's fiscal 2023: two seizures by cargo and passenger, one line without origin.
OTHER = SimulatedYear(
    cases=[
        _case(0, "cargo", None, "USSEA", "seized", "2022-11-15T08:00"),
        _case(1, "passenger", "TR", "USSEA", "abandoned", "2023-09-30T23:00"),
    ],
    lines=[
        _line(0, "pharmaceuticals_personal_care", 40_000, 250),
        _line(1, "handbags_wallets", 3, 45_000),
        _line(1, "footwear", 2, 15_000),
    ],
)


@pytest.fixture
def agencies(stack: Stack) -> tuple[str, str]:
    org = stack.org("CBP report", "customs")
    insert_year(stack.gateway.engine, HAND_BUILT, org["id"])
    other = stack.org("CBP other report", "customs")
    insert_year(stack.gateway.engine, OTHER, other["id"])
    return org["apiKey"], other["apiKey"]


def _report(stack: Stack, key: str, **params: Any) -> str:
    r = stack.client.get(REPORT, params=params, headers=stack.headers(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    return re.sub(r"[ \t]+", " ", pdf_text(r))


def _has(text: str, *cells: str) -> bool:
    """The cells in this order on one line of the text."""
    pattern = r"\s+".join(re.escape(c) for c in cells)
    return any(re.search(pattern, line) for line in text.splitlines())


def test_fiscal_year_report_of_an_agency(stack: Stack, agencies: tuple[str, str]) -> None:
    own, _ = agencies
    text = _report(stack, own, year=2023)
    assert "Intellectual property rights seizure statistics, FY2023" in text
    assert "CBP report" in text and "1 October 2022 to 30 September 2023" in text
    assert _has(text, "Seizures", "3") and _has(text, "Lines", "4")
    assert _has(text, "Quantity (items)", "1,017") and _has(text, "MSRP value", "$12,100.00")
    # by product category: lines, share of lines, quantity, MSRP, share of MSRP
    assert _has(text, "Watches jewelry", "2", "50.0%", "12", "$2,000.00", "16.5%")
    assert _has(text, "Apparel accessories", "2", "50.0%", "1,005", "$10,100.00", "83.5%")
    # by origin, by mode: seizures and their share
    assert _has(text, "CN", "2", "66.7%", "1,015", "$11,100.00", "91.7%")
    assert _has(text, "HK", "1", "33.3%", "2", "$1,000.00", "8.3%")
    assert _has(text, "Mail", "1", "33.3%", "2", "$1,000.00", "8.3%")
    assert _has(text, "Destroyed", "1", "33.3%")
    assert _has(text, "USLGB", "1", "33.3%", "1,000", "$10,000.00", "82.6%")
    assert _has(text, "2023-03", "2", "3", "17", "$2,100.00", "17.4%")
    assert "USSEA" not in text and "Footwear" not in text  # the other agency's
    assert text.count("Total") >= 7
    # the released case and the one of May 2022 are out; fiscal 2022 holds the latter alone
    earlier = _report(stack, own, year=2022)
    assert _has(earlier, "Seizures", "1") and _has(earlier, "MSRP value", "$1.00")


def test_calendar_year_and_all_agencies(stack: Stack, agencies: tuple[str, str]) -> None:
    _, other = agencies
    text = _report(stack, other, year=2023)
    assert _has(text, "Seizures", "2") and _has(text, "Lines", "3")
    assert _has(text, "Quantity (items)", "40,005") and _has(text, "MSRP value", "$101,650.00")
    assert _has(text, "Unknown", "1", "50.0%", "40,000", "$100,000.00", "98.4%")  # no origin
    assert _has(text, "Passenger", "1", "50.0%", "5", "$1,650.00", "1.6%")
    assert _has(text, "Copyright", "2", "3", "40,005", "$101,650.00", "100.0%")
    assert _has(text, "Pharmaceuticals personal care", "1", "33.3%", "40,000")
    # calendar 2023 drops November 2022's seizure
    calendar = _report(stack, other, year=2023, basis="calendar")
    assert "seizure statistics, 2023" in calendar
    assert _has(calendar, "Seizures", "1") and _has(calendar, "MSRP value", "$1,650.00")
    # the registry admin reads every agency's (other tests' too): at least these 3 + 2
    everything = _report(stack, stack.admin_key, year=2023)
    assert "All customs agencies" in everything
    found = re.search(r"Seizures\s+([\d,]+)", everything)
    assert found is not None and int(found.group(1).replace(",", "")) >= 5
    assert "USSEA" in everything and "USLGB" in everything


def test_bad_requests(stack: Stack, agencies: tuple[str, str]) -> None:
    own, _ = agencies
    r = stack.client.get(REPORT, headers=stack.headers(own))
    assert r.status_code == 422 and "year" in r.text
    r = stack.client.get(REPORT, params={"year": "1066"}, headers=stack.headers(own))
    assert r.status_code == 422 and "year" in r.text
    r = stack.client.get(
        REPORT, params={"year": 2023, "basis": "lunar"}, headers=stack.headers(own)
    )
    assert r.status_code == 422 and "basis" in r.text
    holder = stack.org("A brand, report", "rights_holder")["apiKey"]
    api_error(
        stack.client.get(REPORT, params={"year": 2023}, headers=stack.headers(holder)),
        403,
        "forbidden",
    )
