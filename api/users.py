"""People: users of an organization, their passwords, invitations and sessions.

* A user belongs to one organization and has a role in it: every organization has admins
  (who invite, disable and re-enable its users); the other role follows the organization's
  kind (`ROLES_BY_KIND`: a customs agency's officers, a rights holder's analysts, an auditor's
  auditors). The registry admin creates an organization's first admin.
* Passwords are hashed with Argon2id (argon2-cffi, its default parameters, RFC 9106's second
  recommendation); a user invited has none until the invitation's token (shown once, kept as
  SHA-256) is used to set one.
* A session is a random token in an HttpOnly, SameSite=Lax cookie; the table keeps its
  SHA-256, its expiry and the CSRF synchronizer token its forms carry. It is looked up on every
  request (no cache), so deleting a disabled user's sessions signs them out at once.
* Wrong passwords: each failure is slowed (`failure_delay`) and `login_max_failures` in a row
  lock the account for `login_lockout_seconds`; the answer is the same for an unknown email.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, delete, select

from api import audit
from api.errors import Unauthenticated
from api.models import Organization, Role, User, UserRole, UserSession
from api.principal import Actor, Principal, require_org_admin
from ledger.config import Settings
from ledger.errors import Conflict, InvalidInput, NotFound, PermissionDenied

#: The role besides admin that each kind of organization gives its people.
ROLES_BY_KIND: dict[Role, tuple[UserRole, ...]] = {
    Role.ADMIN: (UserRole.ADMIN,),
    Role.CUSTOMS: (UserRole.ADMIN, UserRole.OFFICER),
    Role.RIGHTS_HOLDER: (UserRole.ADMIN, UserRole.ANALYST),
    Role.AUDITOR: (UserRole.ADMIN, UserRole.AUDITOR),
}
LANGUAGES = ("en", "fr")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_HASHER = PasswordHasher()
#: Verified against when the email is unknown, so both answers take as long.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class SignInRefused(Unauthenticated):
    """A sign-in that failed; `locked` when the account is locked (the message says until
    when). The message never says whether the email exists."""

    def __init__(self, message: str, locked: bool = False, failures: int = 0) -> None:
        super().__init__(message)
        self.locked = locked
        self.failures = failures


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a request's CSRF token with the session's."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput(f"email {email[:80]!r} is not an email address")
    return email


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def create_user(
    session: Session,
    settings: Settings,
    org: Organization,
    email: str,
    name: str,
    role: UserRole,
    language: str = "en",
    password: str | None = None,
) -> tuple[User, str | None]:
    """Add a user to `org` (not committed). With `password` (demo users, tests) the account
    is ready; without, it is invited: returns the invitation token, shown once."""
    email = normalize_email(email)
    name = name.strip()
    if not 0 < len(name) <= 200:
        raise InvalidInput("name must be 1-200 characters")
    if role not in ROLES_BY_KIND[org.role]:
        allowed = ", ".join(r.value for r in ROLES_BY_KIND[org.role])
        raise InvalidInput(f"a {org.role.value} organization's users are: {allowed}")
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}")
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise Conflict(f"a user with email {email!r} already exists")
    assert org.id is not None
    user = User(organization_id=org.id, email=email, name=name, role=role, language=language)
    token = None
    if password is not None:
        user.password_hash = _HASHER.hash(check_password(password))
    else:
        token = secrets.token_urlsafe(32)
        user.invitation_hash = hash_token(token)
        user.invitation_expires_at = datetime.now(UTC) + timedelta(hours=settings.invitation_hours)
    session.add(user)
    session.flush()
    return user, token


def invite(
    session: Session,
    settings: Settings,
    principal: Principal,
    email: str,
    name: str,
    role: UserRole,
    language: str = "en",
    organization_id: int | None = None,
) -> tuple[User, str]:
    """An org admin invites a user into its own organization; the registry admin may invite
    the first admin of another organization (`organization_id`). Returns the user and the
    invitation token (shown once); committed with its audit record."""
    require_org_admin(principal)
    org = principal.organization
    if organization_id is not None and organization_id != principal.organization_id:
        if principal.role != Role.ADMIN:
            raise PermissionDenied("only the registry admin invites into another organization")
        if role != UserRole.ADMIN:
            raise PermissionDenied("the registry admin invites another organization's admins")
        other = session.get(Organization, organization_id)
        if other is None:
            raise NotFound(f"no organization {organization_id}")
        org = other
    user, token = create_user(session, settings, org, email, name, role, language)
    assert token is not None
    audit.record(
        session,
        principal,
        "user.invite",
        user.email,
        {"role": role.value, "organizationId": org.id},
    )
    session.commit()
    return user, token


def accept_invitation(session: Session, token: str, password: str) -> User:
    """Set the password of the user `token` invites; the token then stops working."""
    check_password(password)
    user = session.exec(select(User).where(User.invitation_hash == hash_token(token))).first()
    expires = _utc(user.invitation_expires_at) if user is not None else None
    if user is None or expires is None or expires < datetime.now(UTC):
        raise InvalidInput("this invitation link is unknown, used or expired; ask for a new one")
    if user.disabled_at is not None:
        raise PermissionDenied("this account is disabled")
    user.password_hash = _HASHER.hash(password)
    user.invitation_hash = None
    user.invitation_expires_at = None
    session.add(user)
    session.commit()
    return user


def sign_in(session: Session, settings: Settings, email: str, password: str) -> User:
    """The user `email` and `password` sign in, failures counted (committed either way);
    `SignInRefused` otherwise."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise SignInRefused("Wrong email or password.") from None
    user = session.exec(select(User).where(User.email == email)).first()
    now = datetime.now(UTC)
    if user is None or user.password_hash is None:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        raise SignInRefused("Wrong email or password.")
    locked = _utc(user.locked_until)
    if locked is not None and locked > now:
        minutes = max(1, round((locked - now).total_seconds() / 60))
        raise SignInRefused(
            f"Too many wrong passwords: this account is locked for {minutes} more minute(s).",
            locked=True,
            failures=user.failed_logins,
        )
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        lock = user.failed_logins >= settings.login_max_failures
        if lock:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
        session.add(user)
        session.commit()
        if lock:
            raise SignInRefused(
                "Too many wrong passwords: this account is now locked for "
                f"{max(1, round(settings.login_lockout_seconds / 60))} minute(s).",
                locked=True,
                failures=settings.login_max_failures,
            ) from None
        raise SignInRefused("Wrong email or password.", failures=user.failed_logins) from None
    if user.disabled_at is not None:
        raise SignInRefused("This account is disabled; ask your organization's admin.")
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.add(user)
    session.commit()
    return user


def failure_delay(settings: Settings, failures: int) -> float:
    """Seconds to hold a failed sign-in's answer: grows with the failures in a row."""
    return min(3.0, settings.login_failure_delay * max(1, failures))


def start_session(session: Session, settings: Settings, user: User) -> tuple[str, UserSession]:
    """A new session for `user`: the cookie's token (returned once) and its row."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    row = UserSession(
        token_hash=hash_token(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + timedelta(hours=settings.session_hours),
    )
    session.add(row)
    session.commit()
    return token, row


def end_session(session: Session, token: str) -> None:
    session.exec(delete(UserSession).where(col(UserSession.token_hash) == hash_token(token)))
    session.commit()


@dataclass(frozen=True)
class SignedIn:
    """A live session: the principal it authenticates, its user and its CSRF token."""

    principal: Principal
    user: User
    csrf_token: str


def principal_of_user(org: Organization, user: User) -> Principal:
    assert user.id is not None
    return Principal(org, Actor("user", user.id, user.email, user.role))


def session_for(session: Session, token: str) -> SignedIn | None:
    """Who the session `token` signs in; None when unknown, expired or the user disabled."""
    row = session.get(UserSession, hash_token(token))
    if row is None:
        return None
    expires = _utc(row.expires_at)
    assert expires is not None
    if expires < datetime.now(UTC):
        session.delete(row)
        session.commit()
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    org = session.get(Organization, user.organization_id)
    if org is None:
        return None
    return SignedIn(principal_of_user(org, user), user, row.csrf_token)


def _own_user(session: Session, principal: Principal, user_id: int) -> User:
    require_org_admin(principal)
    user = session.get(User, user_id)
    if user is None or user.organization_id != principal.organization_id:
        raise NotFound(f"no user {user_id} in your organization")
    return user


def set_disabled(session: Session, principal: Principal, user_id: int, disabled: bool) -> User:
    """Disable (ending every session of the user at once) or re-enable one of the caller's
    organization's users."""
    user = _own_user(session, principal, user_id)
    if disabled and principal.actor.kind == "user" and principal.actor.id == user.id:
        raise Conflict("you cannot disable yourself")
    user.disabled_at = datetime.now(UTC) if disabled else None
    if not disabled:
        user.failed_logins = 0
        user.locked_until = None
    session.add(user)
    if disabled:
        session.exec(delete(UserSession).where(col(UserSession.user_id) == user.id))
    audit.record(session, principal, "user.disable" if disabled else "user.enable", user.email)
    session.commit()
    session.refresh(user)
    return user


def set_language(session: Session, user: User, language: str) -> User:
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}")
    user.language = language
    session.add(user)
    session.commit()
    return user


def list_users(session: Session, principal: Principal, limit: int = 100) -> list[User]:
    require_org_admin(principal)
    return list(
        session.exec(
            select(User)
            .where(User.organization_id == principal.organization_id)
            .order_by(col(User.id))
            .limit(limit)
        ).all()
    )
