"""Attachments of a case: checked from their bytes (`cases.attachments`), stored once per
content, and recorded as a `note` action of the case (so the custody log holds a commitment
to the file's hash, name and type; idempotency key `attachment:<sha256>`)."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.case_models import CaseAttachment
from api.principal import Principal
from api.schemas import CaseActionRequest
from api.services import cases
from cases.attachments import check
from cases.disclosure import Viewer
from ledger.errors import PermissionDenied


def attach(
    session: Session,
    principal: Principal,
    case_id: str,
    data: bytes,
    declared: str | None,
    file_name: str | None,
    max_bytes: int,
) -> tuple[CaseAttachment, bool]:
    """Add a file to a case (the case's agency only); the same bytes again answer the stored
    attachment (`True`: replayed). A file that is not what it claims: AttachmentRefused."""
    case, viewer = cases.load(session, principal, case_id)
    if viewer is not Viewer.OWN_AGENCY:
        raise PermissionDenied("only the case's agency adds attachments")
    checked = check(data, declared, file_name, max_bytes)
    found = _stored(session, case.id, checked.sha256)
    if found is not None:
        return found, True
    action, _replayed, _link = cases.apply_action(
        session,
        principal,
        case_id,
        CaseActionRequest(
            action="note",
            idempotencyKey=f"attachment:{checked.sha256}",
            params={
                "text": f"attachment {checked.file_name}",
                "attachment": {
                    "sha256": checked.sha256,
                    "mediaType": checked.media_type,
                    "fileName": checked.file_name,
                    "size": checked.size,
                },
            },
        ),
    )
    assert case.id is not None
    row = CaseAttachment(
        attachment_id=str(uuid.uuid4()),
        case_pk=case.id,
        sha256=checked.sha256,
        media_type=checked.media_type,
        file_name=checked.file_name,
        size=checked.size,
        data=data,
        action_id=action.action_id,
        actor=cases.actor_key(principal),
    )
    try:
        session.add(row)
        session.commit()
    except IntegrityError:  # the same bytes, sent twice at once: the other one stored them
        session.rollback()
        found = _stored(session, case.id, checked.sha256)
        if found is None:
            raise
        return found, True
    session.refresh(row)
    return row, False


def list_attachments(
    session: Session, principal: Principal, case_id: str, limit: int
) -> list[CaseAttachment]:
    """The case's attachments (metadata), oldest first; the case's agency only."""
    case, viewer = cases.load(session, principal, case_id)
    if viewer is not Viewer.OWN_AGENCY:
        raise PermissionDenied("only the case's agency lists attachments")
    rows = session.exec(
        select(CaseAttachment)
        .where(CaseAttachment.case_pk == case.id)
        .order_by(col(CaseAttachment.id))
        .limit(limit)
    ).all()
    return list(rows)


def _stored(session: Session, case_pk: int | None, sha256: str) -> CaseAttachment | None:
    return session.exec(
        select(CaseAttachment).where(
            CaseAttachment.case_pk == case_pk, CaseAttachment.sha256 == sha256
        )
    ).first()
