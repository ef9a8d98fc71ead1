"""Working-day calendars and deadlines.

Legal clocks count either calendar days or business ("working") days of one jurisdiction:
weekends and public holidays of that country (in the EU of the member state whose office
holds the goods) do not count. Holidays are data (`data/calendars.toml`, rules rather than
lists of dates, so any year works) and can be extended per deployment (`Calendar.with_extra`).

A deadline is a *day*: day 0 is the day the clock starts (the date of presentation, of the
notice...) in the port's local time; the deadline runs out at the end of its due day in that
time zone. `Deadline.due_at` is that instant in UTC, which is what the clock jobs compare
with: across a daylight-saving change the UTC instant moves by the change, the day does not.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import InvalidInput

_DAYS = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}


class DayUnit(StrEnum):
    BUSINESS = "business"
    CALENDAR = "calendar"


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _nth_weekday(year: int, rule: str) -> date:
    month_s, day_s, nth = rule.split("-")
    month, weekday = int(month_s), _DAYS[day_s.upper()]
    if nth == "last":
        last = (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (int(nth) - 1))


@dataclass(frozen=True)
class Calendar:
    """One jurisdiction's working days: `weekend` (ISO weekdays), holiday rules, time zone."""

    name: str
    timezone: str = "UTC"
    weekend: frozenset[int] = frozenset({6, 7})
    fixed: tuple[str, ...] = ()
    nth_weekday: tuple[str, ...] = ()
    easter: tuple[int, ...] = ()
    extra: frozenset[date] = frozenset()
    observed: str | None = None
    _years: dict[int, frozenset[date]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.zone()  # fail early on an unknown zone
        for rule in self.fixed:
            _check(self.name, rule, lambda r: date(2024, int(r[:2]), int(r[3:])))
        for rule in self.nth_weekday:
            _check(self.name, rule, lambda r: _nth_weekday(2024, r))

    def zone(self, override: str | None = None) -> ZoneInfo:
        name = override or self.timezone
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"unknown time zone {name!r}") from exc

    def with_extra(self, days: list[date]) -> Calendar:
        """This calendar with more closed days (a deployment's own holidays)."""
        return Calendar(
            self.name,
            self.timezone,
            self.weekend,
            self.fixed,
            self.nth_weekday,
            self.easter,
            self.extra | frozenset(days),
            self.observed,
        )

    def holidays(self, year: int) -> frozenset[date]:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        days: set[date] = set()
        for rule in self.fixed:
            day = date(year, int(rule[:2]), int(rule[3:]))
            if self.observed == "us" and day.isoweekday() == 6:
                day -= timedelta(days=1)
            elif self.observed == "us" and day.isoweekday() == 7:
                day += timedelta(days=1)
            days.add(day)
        days.update(_nth_weekday(year, rule) for rule in self.nth_weekday)
        sunday = easter_sunday(year)
        days.update(sunday + timedelta(days=offset) for offset in self.easter)
        days.update(d for d in self.extra if d.year == year)
        result = frozenset(days)
        self._years[year] = result
        return result

    def is_business_day(self, day: date) -> bool:
        return day.isoweekday() not in self.weekend and day not in self.holidays(day.year)

    def add_days(self, start: date, days: int, unit: DayUnit) -> date:
        """The due day `days` days after `start` (day 0), counting `unit` days."""
        if days < 0:
            raise InvalidInput(f"a clock runs forward: {days} days")
        if unit is DayUnit.CALENDAR:
            return start + timedelta(days=days)
        day, left = start, days
        while left:
            day += timedelta(days=1)
            if self.is_business_day(day):
                left -= 1
        return day

    def sub_days(self, end: date, days: int, unit: DayUnit) -> date:
        """The day `days` days (of `unit`) before `end`: when a reminder falls due."""
        if unit is DayUnit.CALENDAR:
            return end - timedelta(days=days)
        day, left = end, days
        while left:
            day -= timedelta(days=1)
            if self.is_business_day(day):
                left -= 1
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days after `start` up to and including `end` (negative when end < start)."""
        sign, lo, hi = (1, start, end) if end >= start else (-1, end, start)
        count, day = 0, lo
        while day < hi:
            day += timedelta(days=1)
            count += self.is_business_day(day)
        return sign * count

    def local_date(self, moment: datetime, zone: str | None = None) -> date:
        return _aware(moment).astimezone(self.zone(zone)).date()

    def end_of_day(self, day: date, zone: str | None = None) -> datetime:
        """The instant (UTC) the local day `day` ends: midnight after it, port time."""
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone(zone))
        return local.astimezone(UTC)


def _check(name: str, rule: str, parse: Any) -> None:
    try:
        parse(rule)
    except (ValueError, KeyError, IndexError) as exc:
        raise InvalidInput(f"calendar {name}: bad holiday rule {rule!r}") from exc


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Deadline:
    """A clock's due day, the instant it runs out, and when to remind (the start of the day
    `remind_before` days before the due day, port time)."""

    start: date
    due: date
    due_at: datetime
    unit: DayUnit
    days: int
    remind_at: datetime

    def days_left(self, calendar: Calendar, now: datetime, zone: str | None = None) -> int:
        """Days (of the clock's unit) from today, port time, to the due day; 0 on the due
        day, negative once overdue."""
        today = calendar.local_date(now, zone)
        if self.unit is DayUnit.CALENDAR:
            return (self.due - today).days
        return calendar.business_days_between(today, self.due)


def deadline(
    calendar: Calendar,
    started: datetime,
    days: int,
    unit: DayUnit,
    zone: str | None = None,
    remind_before: int = 1,
) -> Deadline:
    """The deadline of a clock started at `started` (any time of day 0) for `days` days."""
    start = calendar.local_date(started, zone)
    due = calendar.add_days(start, days, unit)
    remind = calendar.sub_days(due, min(remind_before, days), unit)
    remind_at = calendar.end_of_day(remind - timedelta(days=1), zone)
    return Deadline(start, due, calendar.end_of_day(due, zone), unit, days, remind_at)


@cache
def _shipped() -> dict[str, Any]:
    text = resources.files("cases").joinpath("data/calendars.toml").read_text()
    return tomllib.loads(text)


#: Calendars a deployment added or replaced (`add_calendars`), over the shipped ones.
_ADDED: dict[str, Any] = {}


def _calendar_data() -> dict[str, Any]:
    return {**_shipped(), **_ADDED}


def add_calendars(text: str) -> list[str]:
    """Add or replace calendars from TOML in the format of `data/calendars.toml` (a
    deployment's own closed days; the gateway reads `BORDERLEDGER_CASE_CALENDARS` at start).
    Every calendar is checked before any is used; returns their names."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"calendars: not TOML: {exc}") from None
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise InvalidInput(f"calendars: {name!r} must be a table")
        _build(name, entry)
    _ADDED.update({name.upper(): entry for name, entry in data.items()})
    get_calendar.cache_clear()
    return sorted(name.upper() for name in data)


def reset_calendars() -> None:
    """Back to the shipped calendars (tests)."""
    _ADDED.clear()
    get_calendar.cache_clear()


def _build(name: str, data: dict[str, Any]) -> Calendar:
    try:
        return Calendar(
            name=name.upper(),
            timezone=data.get("timezone", "UTC"),
            weekend=frozenset(data.get("weekend", [6, 7])),
            fixed=tuple(data.get("fixed", ())),
            nth_weekday=tuple(data.get("nth_weekday", ())),
            easter=tuple(data.get("easter", ())),
            extra=frozenset(date.fromisoformat(d) for d in data.get("extra", ())),
            observed=data.get("observed"),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"calendar {name}: {exc}") from None


def calendar_names() -> list[str]:
    return sorted(_calendar_data())


@cache
def get_calendar(name: str) -> Calendar:
    """The calendar of a jurisdiction or EU member state (ISO 3166 alpha-2 code)."""
    data = _calendar_data().get(name.upper())
    if data is None:
        raise InvalidInput(f"no calendar for {name!r}; known: {', '.join(calendar_names())}")
    return _build(name, data)
