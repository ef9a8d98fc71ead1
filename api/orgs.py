"""Organizations and their API keys.

An API key is 32 random bytes shown once; the database keeps its SHA-256 only. Keys are
scoped by the organization's role (admin, rights holder, customs agency, auditor).
"""

from __future__ import annotations

import hashlib
import secrets

import coincurve
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.crypto import seal
from api.models import ApiKey, Organization, Role
from api.principal import Actor, Principal
from chain.node import dev_private_key
from ledger.errors import Conflict, InvalidInput
from ledger.tags import address_of

KEY_PREFIX = "blk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(session: Session, org: Organization) -> str:
    """Create and store a key for `org`; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    assert org.id is not None
    session.add(ApiKey(organization_id=org.id, key_hash=hash_key(key), prefix=key[:12]))
    return key


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
