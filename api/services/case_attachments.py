"""Attachments of a case: checked from their bytes (`cases.attachments`), stored once per
content, and recorded as a `note` action of the case (so the custody log holds a commitment
to the file's hash, name and type; idempotency key `attachment:<sha256>`).

The officer says what a file is (`KINDS`): a redacted or an unredacted image, or a document.
The case's rights holder lists and downloads exactly the images its disclosure stage allows,
through the disclosure table (`cases.disclosure.readable`: `images_redacted`,
`images_unredacted`), never documents; whoever the case does not exist for gets 404."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from api.case_models import CaseAttachment
from api.principal import Principal
from api.schemas import CaseActionRequest
from api.services import cases
from cases.attachments import AttachmentRefused, check
from cases.disclosure import Viewer, readable
from cases.profiles import get_profile
from ledger.errors import Conflict, NotFound, PermissionDenied

#: What an attachment is, and the disclosure field that lets a rights holder read it (None:
#: the agency's only).
KINDS: dict[str, str | None] = {
    "image_redacted": "images_redacted",
    "image_unredacted": "images_unredacted",
    "document": None,
}


def attach(
    session: Session,
    principal: Principal,
    case_id: str,
    data: bytes,
    declared: str | None,
    file_name: str | None,
    max_bytes: int,
    kind: str = "document",
) -> tuple[CaseAttachment, bool]:
    """Add a file to a case (the case's agency only); the same bytes again answer the stored
    attachment (`True`: replayed). A file that is not what it claims: AttachmentRefused."""
    case, viewer = cases.load(session, principal, case_id)
    if viewer is not Viewer.OWN_AGENCY:
        raise PermissionDenied("only the case's agency adds attachments")
    if kind not in KINDS:
        raise AttachmentRefused(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    checked = check(data, declared, file_name, max_bytes)
    if kind != "document" and not checked.media_type.startswith("image/"):
        raise AttachmentRefused(f"{checked.file_name!r} is {checked.media_type}, not an image")
    found = _stored(session, case.id, checked.sha256)
    if found is not None:
        if found.kind != kind:
            raise Conflict(f"this file is already attached to the case as {found.kind!r}")
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
                    "kind": kind,
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
        kind=kind,
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


def _kinds_readable(case_profile: str, stage: str, viewer: Viewer) -> list[str]:
    """The attachment kinds `viewer` reads at `stage`: those whose disclosure field the
    profile's table lets it read (the agency: every kind)."""
    if viewer is Viewer.OWN_AGENCY:
        return list(KINDS)
    fields = readable(get_profile(case_profile), stage, viewer) or frozenset()
    return [kind for kind, field in KINDS.items() if field is not None and field in fields]


def list_attachments(
    session: Session, principal: Principal, case_id: str, limit: int
) -> list[CaseAttachment]:
    """The case's attachments (metadata), oldest first: all for its agency; for its rights
    holder the images its stage discloses (others: the case does not exist, 404)."""
    case, viewer = cases.load(session, principal, case_id)
    kinds = _kinds_readable(case.profile, case.stage, viewer)
    rows = session.exec(
        select(CaseAttachment)
        .options(defer(CaseAttachment.data))  # type: ignore[arg-type]  # metadata only
        .where(CaseAttachment.case_pk == case.id, col(CaseAttachment.kind).in_(kinds))
        .order_by(col(CaseAttachment.id))
        .limit(limit)
    ).all()
    return list(rows)


def get_attachment(
    session: Session, principal: Principal, case_id: str, attachment_id: str
) -> CaseAttachment:
    """One attachment with its bytes, if the caller may read it now; an attachment the stage
    does not disclose to the caller is answered like an unknown one (404)."""
    case, viewer = cases.load(session, principal, case_id)
    kinds = _kinds_readable(case.profile, case.stage, viewer)
    row = session.exec(
        select(CaseAttachment).where(
            CaseAttachment.case_pk == case.id,
            CaseAttachment.attachment_id == attachment_id,
            col(CaseAttachment.kind).in_(kinds),
        )
    ).first()
    if row is None:
        raise NotFound(f"no attachment {attachment_id!r} on case {case_id!r}")
    return row


def _stored(session: Session, case_pk: int | None, sha256: str) -> CaseAttachment | None:
    return session.exec(
        select(CaseAttachment).where(
            CaseAttachment.case_pk == case_pk, CaseAttachment.sha256 == sha256
        )
    ).first()
