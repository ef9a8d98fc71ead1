"""The review workflow: a holder's draft is submitted, a customs agency reviews then
publishes it; an edit of a published guide is a new draft version while officers keep
reading the published one. Officers rely only on a published guide that has not expired
(its recordation's expiry)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from guides.errors import InvalidGuide, TransitionNotAllowed
from guides.model import GuideContent


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    PUBLISHED = "published"


#: step → (states it starts from, state it leads to)
STEPS: dict[str, tuple[frozenset[State], State]] = {
    "submit": (frozenset({State.DRAFT}), State.SUBMITTED),
    "review": (frozenset({State.SUBMITTED}), State.REVIEWED),
    "publish": (frozenset({State.REVIEWED}), State.PUBLISHED),
    "reject": (frozenset({State.SUBMITTED, State.REVIEWED}), State.DRAFT),
}
#: who takes each step: the holder submits, a customs agency reviews, publishes or rejects
HOLDER_STEPS = frozenset({"submit"})
CUSTOMS_STEPS = frozenset({"review", "publish", "reject"})


def advance(state: State, step: str, content: GuideContent, today: date) -> State:
    """The state after `step`; `TransitionNotAllowed` (409) when the state does not allow it,
    `InvalidGuide` (422) when a submitted guide lacks what customs needs to rely on it."""
    sources, target = STEPS[step]
    if state not in sources:
        raise TransitionNotAllowed(step, state.value)
    if step == "submit":
        problems = submission_problems(content, today)
        if problems:
            raise InvalidGuide("the guide is not ready to submit: " + "; ".join(problems), problems)
    return target


def submission_problems(content: GuideContent, today: date) -> list[str]:
    """What a guide needs before customs reviews it: a recordation or AFA that has not
    expired (the guide expires with it), a feature to check and a contact to call."""
    problems = []
    expires = content.expires
    if expires is None:
        problems.append("cite a recordation or application for action (with its expiry)")
    elif expires < today:
        problems.append(f"the recordation expired on {expires.isoformat()}")
    if not content.features:
        problems.append("describe at least one authentication feature")
    if not content.contacts:
        problems.append("give at least one legal or technical contact")
    return problems


def relied_on(published: bool, expires: date | None, today: date) -> bool:
    """Whether officers may rely on a guide: published and not expired."""
    return published and (expires is None or expires >= today)
