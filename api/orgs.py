"""Organizations and their API keys.

An API key is 32 random bytes shown once; the database keeps its SHA-256 only. Keys are
scoped by the organization's role (admin, rights holder, customs agency, auditor). An
organization has any number of named keys (one per machine or integration), which its
admin lists, creates, rotates (a new key of the same name; the old one revoked) and revokes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

import coincurve
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api import audit
from api.crypto import seal
from api.models import ApiKey, Organization, Role
from api.principal import Actor, Principal, require_org_admin
from chain.node import dev_private_key
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.tags import address_of

KEY_PREFIX = "blk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(session: Session, org: Organization, name: str = "default") -> str:
    """Create and store a key for `org`; the plain key is returned once and never stored."""
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise InvalidInput("API key name must be 1-100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    assert org.id is not None
    session.add(ApiKey(organization_id=org.id, key_hash=hash_key(key), prefix=key[:12], name=name))
    return key


def list_keys(session: Session, principal: Principal, limit: int = 100) -> list[ApiKey]:
    """The organization's keys, revoked ones included (they say when), oldest first."""
    require_org_admin(principal)
    return list(
        session.exec(
            select(ApiKey)
            .where(ApiKey.organization_id == principal.organization_id)
            .order_by(col(ApiKey.id))
            .limit(limit)
        ).all()
    )


def create_key(session: Session, principal: Principal, name: str) -> tuple[ApiKey, str]:
    """A new named key of the caller's organization; the key is returned once."""
    require_org_admin(principal)
    key = new_api_key(session, principal.organization, name)
    session.flush()
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
    audit.record(session, principal, "api_key.create", row.prefix, {"name": row.name})
    session.commit()
    return row, key


def _own_key(session: Session, principal: Principal, key_id: int) -> ApiKey:
    require_org_admin(principal)
    row = session.get(ApiKey, key_id)
    if row is None or row.organization_id != principal.organization_id:
        raise NotFound(f"no API key {key_id} in your organization")
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} ({row.prefix}…) is already revoked")
    return row


def revoke_key(session: Session, principal: Principal, key_id: int) -> ApiKey:
    """Revoke one of the organization's keys (it stops working within the key cache's 10 s
    in other processes, at once in this one: the route clears its cache)."""
    row = _own_key(session, principal, key_id)
    row.revoked_at = datetime.now(UTC)
    session.add(row)
    audit.record(session, principal, "api_key.revoke", row.prefix, {"name": row.name})
    session.commit()
    session.refresh(row)
    return row


def rotate_key(session: Session, principal: Principal, key_id: int) -> tuple[ApiKey, str]:
    """Replace a key: a new key of the same name, the old one revoked, in one transaction."""
    old = _own_key(session, principal, key_id)
    old.revoked_at = datetime.now(UTC)
    session.add(old)
    key = new_api_key(session, principal.organization, old.name)
    session.flush()
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
    audit.record(
        session, principal, "api_key.rotate", row.prefix, {"name": row.name, "old": old.prefix}
    )
    session.commit()
    return row, key


def create_organization(
    session: Session,
    name: str,
    role: Role,
    secret_key: str,
    private_key: bytes | None = None,
    signer_key: bytes | None = None,
) -> tuple[Organization, str]:
    """Create an organization with a chain key (not for auditors) and, for rights holders, a
    tag-signing key; both sealed at rest. Returns the organization and its first API key."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("organization name must be 1-200 characters")
    if session.exec(select(Organization).where(Organization.name == name)).first() is not None:
        raise Conflict(f"an organization named {name!r} already exists")
    org = Organization(name=name, role=role)
    if role != Role.AUDITOR:
        key = private_key or secrets.token_bytes(32)
        org.key_encrypted = seal(secret_key, key)
        org.address = address_of(coincurve.PrivateKey(key).public_key)
    if role == Role.RIGHTS_HOLDER:
        signer = signer_key or secrets.token_bytes(32)
        org.signer_key_encrypted = seal(secret_key, signer)
        org.signer_address = address_of(coincurve.PrivateKey(signer).public_key)
    session.add(org)
    session.flush()
    return org, new_api_key(session, org)


def create_dev_admin(engine: Engine, secret_key: str) -> str:
    """The admin organization of a development chain, whose chain key is the node's first
    dev account (the one that deployed the registry, so its admin); returns its API key.
    For `borderledger up`, benchmarks and tests, never a real chain."""
    with Session(engine) as session:
        _, key = create_organization(
            session, "Registry admin", Role.ADMIN, secret_key, private_key=dev_private_key(0)
        )
        session.commit()
    return key


def principal_for_key(session: Session, key: str) -> Principal | None:
    """Who an API key authenticates: its organization, acting through that key; None for an
    unknown or revoked key."""
    api_key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if api_key is None or api_key.revoked_at is not None:
        return None
    org = session.get(Organization, api_key.organization_id)
    if org is None:
        return None
    assert api_key.id is not None
    return Principal(org, Actor("api_key", api_key.id, api_key.prefix))
