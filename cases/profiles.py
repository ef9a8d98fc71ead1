"""Jurisdiction profiles: the states, actions, clocks, disclosure stages and documents of one
procedure, read from data files (`data/profiles/*.toml`; the format is in docs/cases.md).

A new country or procedure is a new file, not a code path: everything the state machine
(`cases.machine`), the clocks and the disclosure rules (`cases.disclosure`) do is driven by
the loaded `Profile`. A profile may `extends` another and override its top-level keys (US
copyright is the trademark procedure under another right).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from cases.calendar import DayUnit
from cases.disclosure_fields import FIELDS
from cases.errors import InvalidProfile
from ledger.errors import InvalidInput

ANY_STATE = "*"
#: Who can take an action: an officer of the case's agency, the case's rights holder, or the
#: importer / declarant through the single-use link sent with a notice.
PARTIES = ("officer", "holder", "importer")


@dataclass(frozen=True)
class ActionRule:
    name: str
    sources: tuple[str, ...]
    #: The state after the action, per state it is taken in (empty: the state does not change).
    targets: dict[str, str]
    by: tuple[str, ...]
    stage: str | None
    documents: tuple[str, ...]
    requires: tuple[str, ...]
    approval: bool
    extends: str | None
    max_days: int
    extensions: int
    perishable: bool

    def allowed_in(self, state: str) -> bool:
        return ANY_STATE in self.sources or state in self.sources

    def target(self, state: str) -> str:
        return self.targets.get(state, self.targets.get(ANY_STATE, state))


@dataclass(frozen=True)
class ClockRule:
    name: str
    #: "presented" (the case's presentation) or the action that starts it.
    starts: str
    days: int
    unit: DayUnit
    remind_before: int
    runs_in: tuple[str, ...]
    stopped_by: tuple[str, ...]
    #: The state a case moves to when the clock runs out in a given state (absent: only flagged).
    expire: dict[str, str]
    perishable_days: int | None

    def days_for(self, perishable: bool) -> int:
        return self.perishable_days if perishable and self.perishable_days else self.days


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    jurisdiction: str
    calendar: str
    right: str
    procedure: str
    initial: str
    final: tuple[str, ...]
    states: tuple[str, ...]
    stages: tuple[str, ...]
    outcomes: dict[str, str]
    reveals: dict[str, tuple[str, ...]]
    viewers: dict[str, tuple[str, ...]]
    actions: dict[str, ActionRule]
    clocks: dict[str, ClockRule]

    def stage_index(self, stage: str) -> int:
        return self.stages.index(stage)

    def actions_in(self, state: str) -> list[str]:
        return [name for name, rule in self.actions.items() if rule.allowed_in(state)]

    def documents(self) -> list[str]:
        return sorted({d for rule in self.actions.values() for d in rule.documents})

    def clocks_started_by(self, event: str) -> list[ClockRule]:
        return [clock for clock in self.clocks.values() if clock.starts == event]


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


def _action(name: str, data: dict[str, Any]) -> ActionRule:
    to = data.get("to")
    targets = dict(to) if isinstance(to, dict) else ({ANY_STATE: to} if to else {})
    return ActionRule(
        name=name,
        sources=_tuple(data.get("from")),
        targets=targets,
        by=_tuple(data.get("by", ["officer"])),
        stage=data.get("stage"),
        documents=_tuple(data.get("documents")),
        requires=_tuple(data.get("requires")),
        approval=bool(data.get("approval", False)),
        extends=data.get("extends"),
        max_days=int(data.get("max_days", 0)),
        extensions=int(data.get("extensions", 0)),
        perishable=bool(data.get("perishable", True)),
    )


def _clock(name: str, data: dict[str, Any]) -> ClockRule:
    return ClockRule(
        name=name,
        starts=data["starts"],
        days=int(data["days"]),
        unit=DayUnit(data.get("unit", "business")),
        remind_before=int(data.get("remind_before", 1)),
        runs_in=_tuple(data.get("runs_in")),
        stopped_by=_tuple(data.get("stopped_by")),
        expire=dict(data.get("expire", {})),
        perishable_days=data.get("perishable_days"),
    )


def parse_profile(data: dict[str, Any]) -> Profile:
    """A profile from its data (already merged with what it extends), checked for
    consistency: every state, stage, clock, party and field it names is defined."""
    try:
        profile = Profile(
            id=data["id"],
            title=data["title"],
            jurisdiction=data["jurisdiction"],
            calendar=data["calendar"],
            right=data["right"],
            procedure=data["procedure"],
            initial=data["initial"],
            final=_tuple(data.get("final")),
            states=_tuple(data["states"]),
            stages=_tuple(data["stages"]),
            outcomes=dict(data.get("outcomes", {})),
            reveals={k: _tuple(v) for k, v in data.get("reveals", {}).items()},
            viewers={k: _tuple(v) for k, v in data.get("viewers", {}).items()},
            actions={k: _action(k, v) for k, v in data.get("actions", {}).items()},
            clocks={k: _clock(k, v) for k, v in data.get("clocks", {}).items()},
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidProfile(f"profile {data.get('id')!r}: missing or bad key {exc}") from exc
    _check(profile)
    return profile


def _check(p: Profile) -> None:
    def bad(message: str) -> InvalidProfile:
        return InvalidProfile(f"profile {p.id!r}: {message}")

    states = set(p.states)
    if p.initial not in states or not set(p.final) <= states:
        raise bad("initial and final states must be among its states")
    if not p.stages or set(p.reveals) - set(p.stages):
        raise bad("reveals names a stage it does not define")
    for fields in (*p.reveals.values(), *p.viewers.values()):
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise bad(f"unknown case fields {sorted(unknown)}")
    for rule in p.actions.values():
        named = set(rule.sources) - {ANY_STATE} | set(rule.targets.values())
        named |= set(rule.targets) - {ANY_STATE}
        if named - states:
            raise bad(f"action {rule.name!r} names unknown states {sorted(named - states)}")
        if rule.stage is not None and rule.stage not in p.stages:
            raise bad(f"action {rule.name!r} names unknown stage {rule.stage!r}")
        if set(rule.by) - set(PARTIES):
            raise bad(f"action {rule.name!r}: 'by' must be among {PARTIES}")
        if rule.extends is not None and rule.extends not in p.clocks:
            raise bad(f"action {rule.name!r} extends unknown clock {rule.extends!r}")
    for clock in p.clocks.values():
        if clock.starts != "presented" and clock.starts not in p.actions:
            raise bad(f"clock {clock.name!r} starts on unknown action {clock.starts!r}")
        named = set(clock.runs_in) | set(clock.expire) | set(clock.expire.values())
        if named - states:
            raise bad(f"clock {clock.name!r} names unknown states {sorted(named - states)}")
        if set(clock.stopped_by) - set(p.actions):
            raise bad(f"clock {clock.name!r} is stopped by an unknown action")


def _files() -> dict[str, dict[str, Any]]:
    folder = resources.files("cases").joinpath("data/profiles")
    out = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text())
            out[data["id"]] = data
    return out


@cache
def all_profiles() -> dict[str, Profile]:
    raw = _files()

    def merged(pid: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if pid in seen:
            raise InvalidProfile(f"profile {pid!r} extends itself")
        data = raw[pid]
        parent = data.get("extends")
        if parent is None:
            return data
        if parent not in raw:
            raise InvalidProfile(f"profile {pid!r} extends unknown profile {parent!r}")
        base = dict(merged(parent, (*seen, pid)))
        base.update({k: v for k, v in data.items() if k != "extends"})
        return base

    return {pid: parse_profile(merged(pid)) for pid in sorted(raw)}


def get_profile(profile_id: str) -> Profile:
    profile = all_profiles().get(profile_id)
    if profile is None:
        known = ", ".join(all_profiles())
        raise InvalidInput(f"unknown jurisdiction profile {profile_id!r}; known: {known}")
    return profile
