"""Product identification guides (docs/guides.md): a rights holder writes and submits them,
a customs agency reviews and publishes them, officers search them and read them with a
verdict. Readable by the guide's holder and customs agencies only (404 to another holder,
403 to other roles)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import GatewayDep, HolderDep, SessionDep, role_rule
from api.models import Role
from api.openapi import DEFAULT_PAGE, PageLimit, errors
from api.principal import Principal
from api.services import guides
from api.uploads import read_body
from guides.model import CATEGORIES, GuideContent
from ledger.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["guides"])
GuideId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="the guide's id")]
PhotoId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="the photo's id")]
#: holders and customs agencies read guides; every other role is refused (403)
GuideReaderDep = Annotated[Principal, Depends(role_rule(Role.RIGHTS_HOLDER, Role.CUSTOMS))]
CustomsDep = Annotated[Principal, Depends(role_rule(Role.CUSTOMS))]
ERRORS = errors(401, 403, 404, 409, 422)


def _answer(session: SessionDep, principal: Principal, guide: Any, status: int) -> JSONResponse:
    return JSONResponse(guides.shape(session, principal, guide), status_code=status)


@router.get("/guide-categories", responses=errors(401, 403))
def categories(principal: GuideReaderDep, limit: PageLimit = DEFAULT_PAGE) -> list[dict[str, str]]:
    """The product categories: CBP's code and label, and the EU report's category."""
    return [{"code": c, "cbp": cbp, "eu": eu} for c, (cbp, eu) in CATEGORIES.items()][:limit]


@router.post("/guides", status_code=201, responses=ERRORS)
def create_guide(
    body: GuideContent, principal: HolderDep, session: SessionDep, gateway: GatewayDep
) -> JSONResponse:
    """A new guide of one of the holder's products (a draft, version 1). Retried with the
    same content it answers the same guide (200); a second guide of the product is 409."""
    written = guides.create(session, principal, body, gateway.detection.registry)
    return _answer(session, principal, written.guide, 201 if written.created else 200)


@router.get("/guides", responses=errors(401, 403, 422))
def search_guides(
    principal: GuideReaderDep,
    session: SessionDep,
    q: Annotated[
        str | None, Query(max_length=100, description="brand or product name contains")
    ] = None,
    brand: Annotated[str | None, Query(max_length=100)] = None,
    name: Annotated[str | None, Query(max_length=100, description="product name contains")] = None,
    gtin: Annotated[str | None, Query(pattern=r"^\d{14}$")] = None,
    prefix: Annotated[
        str | None, Query(pattern=r"^\d{6,12}$", description="GS1 company prefix")
    ] = None,
    state: Literal["draft", "submitted", "reviewed", "published"] | None = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[dict[str, Any]]:
    """Search guides by brand, product name, GTIN or company prefix. Officers find the
    published, unexpired ones (or name a `state`: `submitted` is the review queue); a holder
    its own."""
    found = guides.search(
        session,
        principal,
        q=q,
        brand=brand,
        name=name,
        gtin=gtin,
        prefix=prefix,
        state=state,
        limit=limit,
    )
    return [guides.shape(session, principal, g, photos=False) for g in found]


@router.post("/guide-imports", responses=errors(401, 403, 413, 422))
async def import_guides(
    request: Request, principal: HolderDep, gateway: GatewayDep
) -> dict[str, Any]:
    """Create or update many guides from a CSV or JSON file, all or nothing: any problem
    (line-numbered) and nothing is stored. Re-importing the same file changes nothing."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    kinds = {"text/csv": "csv", "application/csv": "csv", "application/json": "json"}
    if kind not in kinds:
        raise InvalidInput(f"content type {kind!r}: send text/csv or application/json")
    raw = await read_body(request, gateway.settings.max_upload_bytes)

    def run() -> dict[str, Any]:
        with Session(gateway.engine, expire_on_commit=False) as session:
            return guides.import_file(
                session, principal, raw, kinds[kind], gateway.detection.registry
            )

    return await run_in_threadpool(run)


@router.get("/guides/{guide_id}", responses=ERRORS)
def read_guide(guide_id: GuideId, principal: GuideReaderDep, session: SessionDep) -> JSONResponse:
    """A guide: its current version (customs: once submitted) and its published one."""
    return _answer(session, principal, guides.readable(session, principal, guide_id), 200)


@router.put("/guides/{guide_id}", responses=ERRORS)
def update_guide(
    guide_id: GuideId,
    body: GuideContent,
    principal: HolderDep,
    session: SessionDep,
    gateway: GatewayDep,
) -> JSONResponse:
    """The guide's next version, a draft to submit again (officers keep the published one
    meanwhile). The same content again writes no version."""
    written = guides.update(session, principal, guide_id, body, gateway.detection.registry)
    return _answer(session, principal, written.guide, 200)


def _step(
    name: str, guide_id: str, principal: Principal, session: SessionDep, note: str
) -> JSONResponse:
    guide, _ = guides.step(session, principal, guide_id, name, note)
    return _answer(session, principal, guide, 200)


@router.post("/guides/{guide_id}/submit", responses=ERRORS)
def submit_guide(
    guide_id: GuideId,
    principal: HolderDep,
    session: SessionDep,
    note: Annotated[str, Body(embed=True, max_length=2000)] = "",
) -> JSONResponse:
    """Submit the draft to customs review (needs an unexpired recordation, a feature and a
    contact); submitting again is a no-op."""
    return _step("submit", guide_id, principal, session, note)


@router.post("/guides/{guide_id}/review", responses=ERRORS)
def review_guide(
    guide_id: GuideId,
    principal: CustomsDep,
    session: SessionDep,
    decision: Annotated[Literal["accept", "reject"], Body(embed=True)] = "accept",
    note: Annotated[str, Body(embed=True, max_length=2000)] = "",
) -> JSONResponse:
    """A customs agency reviews a submitted guide: accepted (reviewed, ready to publish) or
    rejected back to the holder's draft with the note saying why."""
    return _step("review" if decision == "accept" else "reject", guide_id, principal, session, note)


@router.post("/guides/{guide_id}/publish", responses=ERRORS)
def publish_guide(
    guide_id: GuideId,
    principal: CustomsDep,
    session: SessionDep,
    note: Annotated[str, Body(embed=True, max_length=2000)] = "",
) -> JSONResponse:
    """Publish a reviewed guide: officers rely on it from now until its recordation expires."""
    return _step("publish", guide_id, principal, session, note)


@router.get("/guides/{guide_id}/history", responses=ERRORS)
def guide_history(
    guide_id: GuideId,
    principal: GuideReaderDep,
    session: SessionDep,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[dict[str, Any]]:
    """Every version and step: who, when, what changed (field, before, after)."""
    return guides.history(session, principal, guide_id)[-limit:]


@router.post(
    "/guides/{guide_id}/photos", status_code=201, responses=errors(401, 403, 404, 413, 422)
)
async def add_photo(
    guide_id: GuideId,
    request: Request,
    principal: HolderDep,
    gateway: GatewayDep,
    kind: Literal["genuine", "fake"] = "genuine",
    caption: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, Any]:
    """Add a photo (the body: JPEG, PNG or WebP bytes) of the genuine product or a known
    fake. Judged from its bytes, re-encoded, stripped of EXIF/GPS and other metadata."""
    settings = gateway.settings
    raw = await read_body(request, settings.guide_photo_bytes)

    def run() -> dict[str, Any]:
        with Session(gateway.engine, expire_on_commit=False) as session:
            photo = guides.add_photo(
                session,
                principal,
                guide_id,
                kind,
                caption,
                raw,
                max_bytes=settings.guide_photo_bytes,
                directory=settings.guide_photo_dir,
            )
            guide = guides.readable(session, principal, guide_id)
            return guides.photo_json(guide, photo)

    return await run_in_threadpool(run)


@router.get(
    "/guides/{guide_id}/photos/{photo_id}",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def read_photo(
    guide_id: GuideId,
    photo_id: PhotoId,
    principal: GuideReaderDep,
    session: SessionDep,
    gateway: GatewayDep,
) -> Response:
    """A photo of the guide, as stored (re-encoded, without metadata)."""
    photo = guides.photo(session, principal, guide_id, photo_id)
    data = guides.photo_data(photo, gateway.settings.guide_photo_dir)
    return Response(data, media_type=photo.mime, headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/guides/{guide_id}/pdf",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"application/pdf": {}}}},
)
def guide_pdf(
    guide_id: GuideId, principal: GuideReaderDep, session: SessionDep, gateway: GatewayDep
) -> Response:
    """The guide as a printable PDF with its confidentiality notice on every page."""
    data = guides.render_pdf(session, principal, guide_id, gateway.settings.guide_photo_dir)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="guide-{guide_id}.pdf"'},
    )
