"""Deadlines per profile across holidays, a leap day and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cases.calendar import DayUnit, deadline, easter_sunday, get_calendar
from cases.profiles import get_profile
from ledger.errors import InvalidInput


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("profile", "clock", "calendar", "started", "perishable", "due", "due_at"),
    [
        # US: 5 business days across Christmas (Wed 25 Dec 2024)
        (
            "us-trademark",
            "decide",
            "US",
            "2024-12-20T15:00",
            False,
            "2024-12-30",
            "2024-12-31T05:00",
        ),
        # US: across the leap day (Thu 29 Feb 2024 is a business day)
        (
            "us-trademark",
            "decide",
            "US",
            "2024-02-26T15:00",
            False,
            "2024-03-04",
            "2024-03-05T05:00",
        ),
        # US: 30 calendar days across the leap day, and not in a common year
        (
            "us-trademark",
            "determination",
            "US",
            "2024-02-15T15:00",
            False,
            "2024-03-16",
            "2024-03-17T04:00",
        ),
        (
            "us-copyright",
            "determination",
            "US",
            "2023-02-15T15:00",
            False,
            "2023-03-17",
            "2023-03-18T04:00",
        ),
        # US: daylight saving begins 10 Mar 2024: the day ends at 04:00 UTC, not 05:00
        (
            "us-trademark",
            "importer_answer",
            "US",
            "2024-03-07T15:00",
            False,
            "2024-03-18",
            "2024-03-19T04:00",
        ),
        # US: the 4th of July 2026 is a Saturday, observed Friday 3 July
        (
            "us-gray-market",
            "notice",
            "US",
            "2026-06-29T15:00",
            False,
            "2026-07-07",
            "2026-07-08T04:00",
        ),
        # US: a start at 02:00 UTC is still the previous day in New York
        (
            "us-trademark",
            "decide",
            "US",
            "2024-12-21T02:00",
            False,
            "2024-12-30",
            "2024-12-31T05:00",
        ),
        # EU, Germany: Good Friday and Easter Monday 2024, and the change to summer time
        (
            "eu-standard",
            "confirmation",
            "DE",
            "2024-03-27T10:00",
            False,
            "2024-04-12",
            "2024-04-12T22:00",
        ),
        # EU, the Netherlands: no Good Friday, so one day earlier
        (
            "eu-standard",
            "confirmation",
            "NL",
            "2024-03-27T10:00",
            False,
            "2024-04-11",
            "2024-04-11T22:00",
        ),
        # perishable goods: 3 working days
        (
            "eu-standard",
            "confirmation",
            "DE",
            "2024-03-27T10:00",
            True,
            "2024-04-03",
            "2024-04-03T22:00",
        ),
        # ex officio: 4 working days to file an application, across a leap day
        (
            "eu-standard",
            "application",
            "FR",
            "2024-02-27T10:00",
            False,
            "2024-03-04",
            "2024-03-04T23:00",
        ),
        # small consignments: 10 working days across the October change to winter time
        (
            "eu-small-consignments",
            "declarant_answer",
            "BE",
            "2024-10-21T10:00",
            False,
            "2024-11-05",
            "2024-11-05T23:00",
        ),
    ],
)
def test_deadlines(
    profile: str,
    clock: str,
    calendar: str,
    started: str,
    perishable: bool,
    due: str,
    due_at: str,
) -> None:
    rule = get_profile(profile).clocks[clock]
    cal = get_calendar(calendar)
    result = deadline(cal, at(started), rule.days_for(perishable), rule.unit)
    assert result.due == date.fromisoformat(due)
    assert result.due_at == at(due_at)


def test_days_left_counts_the_clock_unit() -> None:
    cal = get_calendar("US")
    d = deadline(cal, at("2024-12-20T15:00"), 5, DayUnit.BUSINESS)
    assert d.days_left(cal, at("2024-12-24T15:00")) == 3  # 26, 27, 30
    assert d.days_left(cal, at("2024-12-30T15:00")) == 0
    assert d.days_left(cal, at("2024-12-31T15:00")) == -1


def test_holidays_are_rules_and_extensible() -> None:
    us = get_calendar("US")
    assert date(2026, 7, 3) in us.holidays(2026)  # observed
    assert date(2024, 11, 28) in us.holidays(2024)  # 4th Thursday of November
    assert date(2024, 5, 27) in us.holidays(2024)  # last Monday of May
    assert easter_sunday(2024) == date(2024, 3, 31) and easter_sunday(2025) == date(2025, 4, 20)
    closed = us.with_extra([date(2024, 12, 24)])
    assert closed.add_days(date(2024, 12, 20), 5, DayUnit.BUSINESS) == date(2024, 12, 31)
    assert us.add_days(date(2024, 12, 20), 5, DayUnit.BUSINESS) == date(2024, 12, 30)


def test_unknown_calendar_and_zone_are_named() -> None:
    with pytest.raises(InvalidInput, match="XX"):
        get_calendar("XX")
    with pytest.raises(InvalidInput, match="Mars/Olympus"):
        get_calendar("US").zone("Mars/Olympus")


def test_a_deployment_adds_and_replaces_calendars() -> None:
    from cases.calendar import add_calendars, reset_calendars

    try:
        names = add_calendars(
            'XX = { timezone = "Asia/Tokyo", fixed = ["01-02"] }\n'
            'US = { timezone = "America/New_York", fixed = ["12-25"], extra = ["2024-12-24"] }\n'
        )
        assert names == ["US", "XX"]
        assert get_calendar("XX").add_days(date(2024, 1, 1), 1, DayUnit.BUSINESS) == date(
            2024, 1, 3
        )
        assert date(2024, 12, 24) in get_calendar("US").holidays(2024)
        with pytest.raises(InvalidInput, match="YY"):
            add_calendars('YY = { timezone = "Nowhere/Land" }')
        with pytest.raises(InvalidInput, match="TOML"):
            add_calendars("not = toml = at all")
    finally:
        reset_calendars()
    assert date(2024, 12, 24) not in get_calendar("US").holidays(2024)
