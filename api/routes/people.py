"""People and machines of an organization: its users (invited, disabled, re-enabled by its
admin), its named API keys, and its audit trail (docs/people.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api import audit, orgs, users
from api.deps import OrgAdminDep, SessionDep
from api.models import ApiKey, User, UserRole
from api.openapi import DEFAULT_PAGE, PageLimit, errors
from api.schemas import NAME, DateTime

router = APIRouter(tags=["people"])
UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the user's id")]
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the API key's id")]
ERRORS = errors(401, 403, 404, 409, 422)


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class UserCreate(_Model):
    email: str = Field(
        min_length=5,
        max_length=254,
        pattern=r"^\s*[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+\s*$",
    )
    name: str = Field(min_length=1, max_length=200, pattern=NAME)
    role: UserRole
    language: Literal["en", "fr"] = "en"
    organization_id: int | None = Field(
        None,
        alias="organizationId",
        description="registry admin only: invite the first admin of this organization",
    )


class UserPublic(_Model):
    id: int
    organization_id: int = Field(alias="organizationId")
    email: str
    name: str
    role: UserRole
    language: str
    active: bool
    invited: bool = Field(description="true until the invitation is accepted")
    created_at: datetime = Field(alias="createdAt")

    @classmethod
    def of(cls, user: User) -> UserPublic:
        assert user.id is not None
        return cls(
            id=user.id,
            organization_id=user.organization_id,
            email=user.email,
            name=user.name,
            role=user.role,
            language=user.language,
            active=user.disabled_at is None,
            invited=user.password_hash is None,
            created_at=user.created_at,
        )


class Invitation(_Model):
    user: UserPublic
    token: str = Field(description="shown once: the invitee sets a password with it")
    url: str = Field(description="the page where the invitee sets a password")


class InvitationAccept(_Model):
    token: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=10, max_length=256)


class ApiKeyCreate(_Model):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)


class ApiKeyPublic(_Model):
    id: int
    name: str
    prefix: str
    created_at: datetime = Field(alias="createdAt")
    revoked_at: datetime | None = Field(alias="revokedAt")
    key: str | None = Field(None, description="the key itself: only when created or rotated")

    @classmethod
    def of(cls, row: ApiKey, key: str | None = None) -> ApiKeyPublic:
        assert row.id is not None
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            key=key,
        )


@router.get("/v1/users", response_model=list[UserPublic], responses=ERRORS)
def list_users(
    principal: OrgAdminDep, session: SessionDep, limit: PageLimit = DEFAULT_PAGE
) -> list[UserPublic]:
    """The organization's users (its admin only), oldest first."""
    return [UserPublic.of(u) for u in users.list_users(session, principal, limit)]


@router.post(
    "/v1/users", status_code=status.HTTP_201_CREATED, response_model=Invitation, responses=ERRORS
)
def invite_user(
    body: UserCreate, request: Request, principal: OrgAdminDep, session: SessionDep
) -> Invitation:
    """Invite a user (the organization's admin; the registry admin also invites another
    organization's first admin). The token is shown once."""
    gateway = request.app.state.gateway
    user, token = users.invite(
        session,
        gateway.settings,
        principal,
        body.email,
        body.name,
        body.role,
        body.language,
        body.organization_id,
    )
    url = str(request.url_for("invitation_page")) + f"?token={token}"
    return Invitation(user=UserPublic.of(user), token=token, url=url)


@router.post("/v1/users/{user_id}/disable", response_model=UserPublic, responses=ERRORS)
def disable_user(user_id: UserId, principal: OrgAdminDep, session: SessionDep) -> UserPublic:
    """Disable a user of the organization: every session of theirs ends at once."""
    return UserPublic.of(users.set_disabled(session, principal, user_id, True))


@router.post("/v1/users/{user_id}/enable", response_model=UserPublic, responses=ERRORS)
def enable_user(user_id: UserId, principal: OrgAdminDep, session: SessionDep) -> UserPublic:
    """Re-enable a disabled user (and lift a lock-out)."""
    return UserPublic.of(users.set_disabled(session, principal, user_id, False))


@router.post("/v1/invitations/accept", response_model=UserPublic, responses=ERRORS)
def accept_invitation(body: InvitationAccept, session: SessionDep) -> UserPublic:
    """Set the password of an invited user with the invitation's token (no other
    authentication: the token is the proof)."""
    return UserPublic.of(users.accept_invitation(session, body.token, body.password))


@router.get("/v1/api-keys", response_model=list[ApiKeyPublic], responses=ERRORS)
def list_api_keys(
    principal: OrgAdminDep, session: SessionDep, limit: PageLimit = DEFAULT_PAGE
) -> list[ApiKeyPublic]:
    """The organization's API keys (never the keys themselves), revoked ones included."""
    return [ApiKeyPublic.of(k) for k in orgs.list_keys(session, principal, limit)]


@router.post(
    "/v1/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyPublic,
    responses=ERRORS,
)
def create_api_key(body: ApiKeyCreate, principal: OrgAdminDep, session: SessionDep) -> ApiKeyPublic:
    """A new named key for a machine; the key is in the answer, once."""
    row, key = orgs.create_key(session, principal, body.name)
    return ApiKeyPublic.of(row, key)


@router.post("/v1/api-keys/{key_id}/rotate", response_model=ApiKeyPublic, responses=ERRORS)
def rotate_api_key(
    key_id: KeyId, request: Request, principal: OrgAdminDep, session: SessionDep
) -> ApiKeyPublic:
    """Replace a key by a new one of the same name; the old one is revoked."""
    row, key = orgs.rotate_key(session, principal, key_id)
    request.app.state.key_cache.clear()
    return ApiKeyPublic.of(row, key)


@router.delete("/v1/api-keys/{key_id}", response_model=ApiKeyPublic, responses=ERRORS)
def revoke_api_key(
    key_id: KeyId, request: Request, principal: OrgAdminDep, session: SessionDep
) -> ApiKeyPublic:
    """Revoke a key; it stops working at once in this process, within 10 s in others."""
    row = orgs.revoke_key(session, principal, key_id)
    request.app.state.key_cache.clear()
    return ApiKeyPublic.of(row)


@router.get(
    "/v1/audit",
    responses={
        **ERRORS,
        200: {"content": {"application/json": {}, "text/csv": {}}},
    },
)
def audit_trail(
    principal: OrgAdminDep,
    session: SessionDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    since: DateTime | None = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> Response:
    """The organization's audit trail, newest first (its admin only): every scan, status
    change, enrollment, alert transition, user and key change, with who did it. `format=csv`
    downloads it as CSV."""
    rows = audit.trail(session, principal.organization_id, since, action, limit)
    if format == "csv":
        return Response(
            audit.to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    import orjson

    return Response(orjson.dumps({"events": rows}), media_type="application/json")
