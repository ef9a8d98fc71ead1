"""Who is calling: the principal every route and service acts for.

A principal is an organization plus the actor that authenticated for it. Today the actor is
always one of the organization's API keys; a person signing in is another kind of actor of
the same organization, so routes and services that take a `Principal` need not change when
one is added. What a principal may do depends on its organization's role alone
(`require_role`), what it may see of other organizations' records on `api.scoping`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from api.models import Organization, Role
from ledger.errors import PermissionDenied

ActorKind = Literal["api_key"]


@dataclass(frozen=True)
class Actor:
    """What authenticated: its kind, its id within that kind and a name to show for it (the
    non-secret prefix of an API key)."""

    kind: ActorKind
    id: int
    name: str


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
