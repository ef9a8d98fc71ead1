"""A case's documents as PDF (docs/cases.md, "Documents"): scoped and redacted per reader
like the case itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from api.deps import ReaderDep, SessionDep
from api.openapi import errors
from api.routes.cases import CaseId
from api.services import case_documents

router = APIRouter(prefix="/v1", tags=["cases"])
Kind = Annotated[
    str, Path(pattern=r"^[a-z_]{1,40}$", description="document kind, e.g. notice_of_detention")
]


@router.get(
    "/cases/{case_id}/documents/{kind}",
    response_class=Response,
    responses={
        **errors(401, 404, 409, 422),
        200: {"content": {"application/pdf": {}}, "description": "the document"},
    },
)
def case_document(
    case_id: CaseId, kind: Kind, principal: ReaderDep, session: SessionDep
) -> Response:
    """The document as the caller may read it (a rights holder's copy holds only what its
    stage discloses). Unknown kind: 404; not issued by the case's actions yet: 409."""
    body = case_documents.pdf(session, principal, case_id, kind)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{kind}-{case_id[:8]}.pdf"'},
    )
