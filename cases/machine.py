"""The case state machine: which action a case may take now, and what it changes.

`plan` is pure: it takes the profile, the case's facts and the requested action and returns
the `Step` to store (new state, new disclosure stage, clocks to start and stop, documents,
whether a second officer must approve) or raises: an action the state does not allow is
`ActionNotAllowed` naming the state (409), a party the profile does not let act is
`PermissionDenied`, missing parameters are `InvalidInput`. `expire` says what a clock running
out does. Approval by a second officer is checked with `check_approver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cases.errors import ActionNotAllowed, SecondOfficerRequired, UnknownAction
from cases.profiles import ClockRule, Profile
from ledger.errors import Conflict, InvalidInput, PermissionDenied


@dataclass(frozen=True)
class Facts:
    """What the state machine needs to know of a case."""

    state: str
    stage: str
    perishable: bool = False
    #: extensions already granted, per clock name
    extensions: Mapping[str, int] = field(default_factory=dict)
    #: names of the clocks now running
    running: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Step:
    action: str
    state_before: str
    state_after: str
    stage_after: str
    documents: tuple[str, ...]
    start: tuple[ClockRule, ...]
    stop: tuple[str, ...]
    needs_approval: bool
    #: (clock, days) when the action extends a clock
    extend: tuple[str, int] | None = None


def plan(profile: Profile, facts: Facts, action: str, by: str, params: Mapping[str, Any]) -> Step:
    rule = profile.actions.get(action)
    if rule is None:
        raise UnknownAction(
            f"profile {profile.id!r} has no action {action!r}; "
            f"actions in state {facts.state!r}: {', '.join(profile.actions_in(facts.state))}"
        )
    if not rule.allowed_in(facts.state):
        raise ActionNotAllowed(action, facts.state, profile.actions_in(facts.state))
    if by not in rule.by:
        raise PermissionDenied(f"action {action!r} is taken by: {', '.join(rule.by)}; not {by}")
    missing = [name for name in rule.requires if params.get(name) in (None, "")]
    if missing:
        raise InvalidInput(f"action {action!r} needs: {', '.join(missing)}")
    after = rule.target(facts.state)
    stage = facts.stage
    if rule.stage is not None and profile.stage_index(rule.stage) > profile.stage_index(stage):
        stage = rule.stage
    extend = None
    if rule.extends is not None:
        extend = (rule.extends, _extension(profile, facts, rule.extends, rule, params))
    start = tuple(profile.clocks_started_by(action))
    stop = sorted(
        name
        for name in facts.running
        if name in profile.clocks
        and (action in profile.clocks[name].stopped_by or after not in profile.clocks[name].runs_in)
    )
    return Step(
        action=action,
        state_before=facts.state,
        state_after=after,
        stage_after=stage,
        documents=rule.documents,
        start=tuple(c for c in start if after in c.runs_in),
        stop=tuple(stop),
        needs_approval=rule.approval,
        extend=extend,
    )


def _extension(
    profile: Profile, facts: Facts, clock: str, rule: Any, params: Mapping[str, Any]
) -> int:
    if facts.perishable and not rule.perishable:
        raise Conflict(f"clock {clock!r} of a perishable case cannot be extended")
    if clock not in facts.running:
        raise Conflict(f"clock {clock!r} is not running in state {facts.state!r}")
    used = facts.extensions.get(clock, 0)
    if used >= rule.extensions:
        raise Conflict(
            f"clock {clock!r} was already extended {used} time(s) (at most {rule.extensions})"
        )
    days = params.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= rule.max_days:
        raise InvalidInput(f"'days' must be an integer from 1 to {rule.max_days}, not {days!r}")
    return days


def expire(profile: Profile, clock: str, state: str) -> str | None:
    """The state a case in `state` moves to when `clock` runs out (None: flagged only)."""
    rule = profile.clocks[clock]
    return rule.expire.get(state)


def check_approver(requested_by: str, approver: str) -> None:
    """Seizure and destruction: the approving officer must be another actor than the one who
    asked (actors are compared as ``kind:id`` keys, so an API key cannot approve its own
    request, nor a user theirs)."""
    if requested_by == approver:
        raise SecondOfficerRequired(
            f"{approver} requested this action; a second officer must approve it"
        )
