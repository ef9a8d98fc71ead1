"""What a principal may see of records that belong to an organization.

One rule, used wherever the gateway confines a caller to its own records (batches, jobs,
alerts, webhook endpoints and deliveries, an item's custody): a caller sees every
organization's records when its role is one the route names as seeing all, and otherwise
only its own organization's. Routes choose the roles; this module applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel.sql.expression import SelectOfScalar

from api.models import Role
from api.principal import Principal

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    """The organization whose records a caller may see; `None`: every organization's."""

    organization_id: int | None

    def allows(self, owner_id: int | None) -> bool:
        """Whether a record owned by `owner_id` is within the scope."""
        return self.organization_id is None or owner_id == self.organization_id

    def confine(
        self, query: SelectOfScalar[T], owner: Any, requested: int | None = None
    ) -> SelectOfScalar[T] | None:
        """`query` filtered on its `owner` column: to the organization the caller asked for
        (`requested`, None: any), and to its own when it is confined to it. None when it asked
        for another organization's records, which are not its to list."""
        if requested is not None and not self.allows(requested):
            return None
        wanted = requested if self.organization_id is None else self.organization_id
        return query if wanted is None else query.where(owner == wanted)


def scope_of(principal: Principal, *sees_all: Role) -> Scope:
    """The caller's scope: every organization's records for the roles in `sees_all`, its own
    organization's for any other role."""
    if principal.role in sees_all:
        return Scope(None)
    return Scope(principal.organization_id)
