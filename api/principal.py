"""Who is calling: the principal every route and service acts for.

A principal is an organization plus the actor that authenticated for it: one of the
organization's API keys (machines), or one of its users signed in through a session (people,
api/users.py). Routes and services take a `Principal` whichever it is. What a principal may
do depends on its organization's role (`require_role`) — the same rule for a key and a
person — and, for managing the organization's own people, keys and audit trail, on being its
administrator (`require_org_admin`); what it may see of other organizations' records on
`api.scoping`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from api.models import Organization, Role, UserRole
from ledger.errors import PermissionDenied

ActorKind = Literal["api_key", "user"]


@dataclass(frozen=True)
class Actor:
    """What authenticated: its kind, its id within that kind and a name to show for it (the
    non-secret prefix of an API key, a person's email), and a person's role inside the
    organization (None for a key: a key acts for the whole organization)."""

    kind: ActorKind
    id: int
    name: str
    user_role: UserRole | None = None

    @property
    def label(self) -> str:
        """How the audit trail names it: `user:<email>` or `api_key:<prefix>`."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Principal:
    organization: Organization
    actor: Actor

    @property
    def role(self) -> Role:
        return self.organization.role

    @property
    def organization_id(self) -> int:
        assert self.organization.id is not None
        return self.organization.id

    @property
    def is_org_admin(self) -> bool:
        """Whether it may manage the organization's users, keys and audit trail: an API key
        (held by whoever runs the organization's systems) or a user whose role is admin."""
        return self.actor.kind == "api_key" or self.actor.user_role == UserRole.ADMIN


def require_role(principal: Principal, *roles: Role) -> Principal:
    """The one role rule: `principal` if its organization has one of `roles`, else
    `PermissionDenied` naming the roles that would do."""
    org = principal.organization
    if org.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"organization {org.name!r} is a {org.role.value}; this needs: {allowed}"
        )
    return principal


def require_org_admin(principal: Principal) -> Principal:
    """`principal` if it administers its organization (`Principal.is_org_admin`), else
    `PermissionDenied` naming the user's role."""
    if not principal.is_org_admin:
        raise PermissionDenied(
            f"{principal.actor.name} is a {principal.actor.user_role}; "
            "this needs the organization's admin"
        )
    return principal


# Who may do what, by role: each tuple is the rule of one typed dependency in `api.deps`.
ADMINS = (Role.ADMIN,)
HOLDERS = (Role.RIGHTS_HOLDER,)
OFFICERS = (Role.CUSTOMS, Role.ADMIN)
HOLDERS_AND_ADMINS = (Role.ADMIN, Role.RIGHTS_HOLDER)
#: The registry admin and auditors (an auditor's grants).
ADMINS_AND_AUDITORS = (Role.ADMIN, Role.AUDITOR)
#: Those who verify products and record their custody: officers, admins and rights holders.
VERIFIERS = (Role.CUSTOMS, Role.ADMIN, Role.RIGHTS_HOLDER)
#: Every role: reads open to all, each scoped where records belong to an organization.
READERS = (Role.CUSTOMS, Role.ADMIN, Role.AUDITOR, Role.RIGHTS_HOLDER)
