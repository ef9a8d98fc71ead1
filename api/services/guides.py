"""Product identification guides for the routes and pages (docs/guides.md): write (a new
version each time the content changes), the review workflow, search, history, bulk import,
photos and the PDF — and the published guide of a GTIN for the verify answer, case lines'
MSRP and new batches' default route policy.

Who reads a guide: its rights holder (every version) and customs agencies (what was
submitted to them and what they published); anyone else is answered 404 as for an unknown
guide (the routes refuse other roles with 403 first). Officers rely only on a published,
unexpired guide (`guides.workflow.relied_on`)."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from api.bindings import bound_holder
from api.detection import normalized_policy
from api.guide_models import Guide, GuideEvent, GuidePhoto
from api.models import IndexedGtinBinding, IndexedPrefixBinding, Organization, Role
from api.principal import Principal
from api.scoping import gtin_holders
from detector import LocationRegistry
from guides import images, imports, pdf
from guides.errors import InvalidGuide
from guides.history import changes
from guides.model import GuideContent
from guides.workflow import CUSTOMS_STEPS, HOLDER_STEPS, STEPS, State, advance, relied_on
from ledger.errors import Conflict, InvalidInput, NotFound, PermissionDenied

MAX_PHOTOS = 20
#: states in which customs reads the current version (a draft is the holder's alone)
SHOWN_TO_CUSTOMS = frozenset({State.SUBMITTED, State.REVIEWED, State.PUBLISHED})


def today() -> date:
    return datetime.now(UTC).date()


def _actor(principal: Principal) -> str:
    return f"{principal.organization.name} ({principal.actor.label})"


# ---------------------------------------------------------------------------- ownership


def _owned_gtins(session: Session, holder: Organization) -> set[str]:
    """The GTINs the holder owns: bound to its address on chain, or its batches'."""
    assert holder.id is not None
    owned = {g for g, _ in gtin_holders(session, holders=[holder.id])}
    if holder.address:
        owned |= set(
            session.exec(
                select(IndexedGtinBinding.gtin).where(IndexedGtinBinding.holder == holder.address)
            ).all()
        )
    return owned


def _prefix_holder(session: Session, prefix: str) -> str | None:
    """The holder of the longest bound company prefix `prefix` lies in (itself included), as
    indexed: a guide of every GTIN under `prefix` is that holder's to write."""
    heads = [prefix[:n] for n in range(6, len(prefix) + 1)]
    rows = session.exec(
        select(IndexedPrefixBinding).where(col(IndexedPrefixBinding.prefix).in_(heads))
    ).all()
    longest = max(rows, key=lambda r: len(r.prefix), default=None)
    return longest.holder if longest is not None else None


def owns(
    session: Session, holder: Organization, content: GuideContent, owned: set[str] | None = None
) -> bool:
    """Whether the holder may write a guide of the product: the GTIN is its own (bound to it,
    on its own or by a company prefix, or of its batches), or (a company prefix) the prefix
    lies in a prefix bound to it, or, within no bound prefix, at least one of its GTINs is
    under it."""
    gtins = owned if owned is not None else _owned_gtins(session, holder)
    if content.gtin is not None:
        if content.gtin in gtins:
            return True
        bound = bound_holder(session, content.gtin)
        return bound is not None and holder.address is not None and bound.holder == holder.address
    prefix = content.company_prefix or ""
    bound_to = _prefix_holder(session, prefix)
    if bound_to is not None:
        return bound_to == holder.address
    return any(g[1:].startswith(prefix) for g in gtins)


def _check_routes(registry: LocationRegistry, content: GuideContent) -> None:
    """The guide's markets and routes must make a valid route policy (known ports)."""
    policy = content.route_policy()
    if policy is not None:
        normalized_policy(registry, policy)
    else:
        unknown = [r for r in content.routes if r not in registry]
        if unknown:
            raise InvalidInput(f"unknown location(s) {', '.join(unknown)} in routes")


# ---------------------------------------------------------------------------- reading


def _load(session: Session, guide_id: str) -> Guide:
    guide = session.exec(select(Guide).where(Guide.guide_id == guide_id)).first()
    if guide is None:
        raise NotFound(f"no guide {guide_id}")
    return guide


def readable(session: Session, principal: Principal, guide_id: str) -> Guide:
    """A guide the caller reads: its holder's own, or one submitted to / published by
    customs for an agency. Anything else is not found, as an unknown guide is."""
    guide = _load(session, guide_id)
    if principal.role == Role.RIGHTS_HOLDER and guide.holder_id == principal.organization_id:
        return guide
    if principal.role == Role.CUSTOMS and (
        guide.state in SHOWN_TO_CUSTOMS or guide.published_content is not None
    ):
        return guide
    raise NotFound(f"no guide {guide_id}")


def _own(session: Session, principal: Principal, guide_id: str) -> Guide:
    guide = _load(session, guide_id)
    if principal.role != Role.RIGHTS_HOLDER or guide.holder_id != principal.organization_id:
        raise NotFound(f"no guide {guide_id}")
    return guide


def photos_of(session: Session, guide: Guide, version: int | None = None) -> list[GuidePhoto]:
    """The guide's photos; with `version`, those that are part of that version (added in it
    or before), which is what a reader of that version sees."""
    query = select(GuidePhoto).where(GuidePhoto.guide_pk == guide.id)
    if version is not None:
        query = query.where(GuidePhoto.version <= version)
    return list(session.exec(query.order_by(col(GuidePhoto.id))).all())


def shape(
    session: Session, principal: Principal, guide: Guide, *, photos: bool = True
) -> dict[str, Any]:
    """The API answer of a guide for the caller: the current version (for customs only once
    submitted) and the published one, with whether officers may rely on it."""
    holder = session.get(Organization, guide.holder_id)
    current_shown = principal.role != Role.CUSTOMS or guide.state in SHOWN_TO_CUSTOMS
    now = today()
    answer: dict[str, Any] = {
        "guideId": guide.guide_id,
        "holder": {"id": guide.holder_id, "name": holder.name if holder else ""},
        "product": guide.product,
        "state": guide.state,
        "version": guide.version if current_shown else guide.published_version,
        "content": guide.content if current_shown else guide.published_content,
        "expires": (guide.expires if current_shown else guide.published_expires),
        "updatedAt": guide.updated_at.replace(tzinfo=UTC).isoformat()
        if guide.updated_at.tzinfo is None
        else guide.updated_at.isoformat(),
        "published": None,
        "reliedOn": relied_on(guide.published_content is not None, guide.published_expires, now),
    }
    if answer["expires"] is not None:
        answer["expires"] = answer["expires"].isoformat()
    if guide.published_content is not None:
        answer["published"] = {
            "version": guide.published_version,
            "content": guide.published_content,
            "expires": guide.published_expires.isoformat() if guide.published_expires else None,
            "publishedAt": guide.published_at.isoformat() if guide.published_at else None,
            "publishedBy": guide.published_by,
        }
    if photos:
        shown = photos_of(session, guide, answer["version"])
        answer["photos"] = [photo_json(guide, p) for p in shown]
    return answer


def photo_json(guide: Guide, photo: GuidePhoto) -> dict[str, Any]:
    return {
        "photoId": photo.photo_id,
        "kind": photo.kind,
        "caption": photo.caption,
        "mime": photo.mime,
        "width": photo.width,
        "height": photo.height,
        "version": photo.version,
        "url": f"/v1/guides/{guide.guide_id}/photos/{photo.photo_id}",
    }


def search(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    brand: str | None = None,
    name: str | None = None,
    gtin: str | None = None,
    prefix: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[Guide]:
    """Guides by brand, product name (case-insensitive substrings; `q` either), GTIN (its
    own guide and those of the company prefixes it falls under) or company prefix (the
    prefix's guide and those of GTINs under it), newest first. A holder searches its own; an
    agency the published, unexpired ones — or, naming a `state`, those in that state (its
    review queue: `state=submitted`). Newest guides first."""
    # Two steps: the ids from the covering index `ix_guides_search` alone (substring
    # matches scan it, not the wide rows with their JSON), then the page of rows by id.
    query = select(Guide.id)
    # An agency's search of what officers rely on matches the published brand and name;
    # the holder's own and the review queue match the current version.
    brand_key: Any = col(Guide.brand_key)
    name_key: Any = col(Guide.name_key)
    if principal.role == Role.RIGHTS_HOLDER:
        query = query.where(Guide.holder_id == principal.organization_id)
        if state is not None:
            query = query.where(Guide.state == state)
    elif state is None or state == State.PUBLISHED:
        query = query.where(col(Guide.published_version).is_not(None)).where(
            or_(col(Guide.published_expires).is_(None), col(Guide.published_expires) >= today())
        )
        brand_key, name_key = Guide.published_brand_key, Guide.published_name_key
    elif state in SHOWN_TO_CUSTOMS:
        query = query.where(Guide.state == state)
    else:
        return []
    if q:
        needle = f"%{_like(q.lower())}%"
        query = query.where(
            or_(brand_key.like(needle, escape="\\"), name_key.like(needle, escape="\\"))
        )
    if brand:
        query = query.where(brand_key.like(f"%{_like(brand.lower())}%", escape="\\"))
    if name:
        query = query.where(name_key.like(f"%{_like(name.lower())}%", escape="\\"))
    if gtin:
        keys = [gtin] + [f"prefix:{gtin[1 : 1 + n]}" for n in range(6, 13)]
        query = query.where(col(Guide.product).in_(keys))
    if prefix:
        query = query.where(
            or_(col(Guide.company_prefix) == prefix, col(Guide.gtin).like(f"_{prefix}%"))
        )
    # No ORDER BY here: with one, SQLite walks the table in id order instead of the index.
    ids = sorted((i for i in session.exec(query).all() if i is not None), reverse=True)[:limit]
    if not ids:
        return []
    rows = session.exec(select(Guide).where(col(Guide.id).in_(ids))).all()
    return sorted(rows, key=lambda g: -(g.id or 0))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def history(session: Session, principal: Principal, guide_id: str) -> list[dict[str, Any]]:
    """Every version and step of the guide, oldest first: who, when, what changed. Customs
    reads the steps and versions from the first submission on."""
    guide = readable(session, principal, guide_id)
    events = session.exec(
        select(GuideEvent).where(GuideEvent.guide_pk == guide.id).order_by(col(GuideEvent.id))
    ).all()
    return [
        {
            "version": e.version,
            "action": e.action,
            "state": e.state,
            "by": e.actor,
            "at": e.at.isoformat(),
            "note": e.note,
            "changes": e.changes,
        }
        for e in events
    ]


# ---------------------------------------------------------------------------- writing


def _record(
    session: Session,
    principal: Principal,
    guide: Guide,
    action: str,
    *,
    note: str = "",
    diff: list[dict[str, Any]] | None = None,
    content: dict[str, Any] | None = None,
) -> None:
    assert guide.id is not None
    session.add(
        GuideEvent(
            guide_pk=guide.id,
            version=guide.version,
            action=action,
            state=guide.state,
            actor=_actor(principal),
            organization_id=principal.organization_id,
            note=note,
            changes=diff or [],
            content=content,
        )
    )


def _apply(guide: Guide, content: GuideContent) -> None:
    guide.product = content.product_key
    guide.gtin = content.gtin
    guide.company_prefix = content.company_prefix
    guide.brand_key = content.brand.lower()
    guide.name_key = content.name.lower()
    guide.category = content.category
    guide.content = content.api()
    guide.expires = content.expires
    guide.updated_at = datetime.now(UTC)


def _find(session: Session, holder_id: int, product: str) -> Guide | None:
    return session.exec(
        select(Guide).where(Guide.holder_id == holder_id, Guide.product == product)
    ).first()


@dataclass
class Written:
    guide: Guide
    created: bool
    changed: bool


def _write(
    session: Session,
    principal: Principal,
    content: GuideContent,
    existing: Guide | None,
) -> Written:
    """Create the guide or write a new version of it (none when nothing changed)."""
    if existing is None:
        guide = Guide(
            guide_id=str(uuid.uuid4()),
            holder_id=principal.organization_id,
            state=State.DRAFT,
            version=1,
            product="",
            brand_key="",
            name_key="",
            category="",
            content={},
        )
        _apply(guide, content)
        session.add(guide)
        session.flush()
        _record(
            session, principal, guide, "create", diff=changes(None, content), content=guide.content
        )
        return Written(guide, created=True, changed=True)
    before = GuideContent.model_validate(existing.content)
    if before == content:
        return Written(existing, created=False, changed=False)
    if content.product_key != existing.product:
        raise InvalidInput(
            f"a guide stays about its product ({existing.product}); write another guide for "
            f"{content.product_key}"
        )
    existing.version += 1
    existing.state = State.DRAFT  # a changed guide is reviewed again; the published one stays
    _apply(existing, content)
    _record(
        session,
        principal,
        existing,
        "update",
        diff=changes(before, content),
        content=existing.content,
    )
    return Written(existing, created=False, changed=True)


def create(
    session: Session, principal: Principal, content: GuideContent, registry: LocationRegistry
) -> Written:
    """A new guide (version 1, a draft). Retried with the same content it answers the same
    guide; another guide of the holder for the product is a conflict naming it."""
    if not owns(session, principal.organization, content):
        raise PermissionDenied(
            f"{principal.organization.name!r} holds no GTIN {content.product_key.removeprefix('prefix:')}"
            " (bound on chain or of its batches): a guide describes the holder's own products"
        )
    _check_routes(registry, content)
    existing = _find(session, principal.organization_id, content.product_key)
    if existing is not None:
        if GuideContent.model_validate(existing.content) == content:
            return Written(existing, created=False, changed=False)
        raise Conflict(
            f"guide {existing.guide_id} already describes {content.product_key}: "
            f"PUT /v1/guides/{existing.guide_id} writes its next version"
        )
    written = _write(session, principal, content, None)
    session.commit()
    forget_essentials()
    return written


def update(
    session: Session,
    principal: Principal,
    guide_id: str,
    content: GuideContent,
    registry: LocationRegistry,
) -> Written:
    """The guide's next version (a draft again, to be submitted); nothing when the content
    is the current one (a retried request)."""
    guide = _own(session, principal, guide_id)
    _check_routes(registry, content)
    written = _write(session, principal, content, guide)
    session.commit()
    forget_essentials()
    return written


def step(
    session: Session, principal: Principal, guide_id: str, name: str, note: str = ""
) -> tuple[Guide, bool]:
    """Take a workflow step (submit: the holder; review, publish, reject: a customs
    agency). Returns (guide, replayed): a step repeated once taken answers the guide
    unchanged."""
    if name in HOLDER_STEPS:
        guide = _own(session, principal, guide_id)
    elif name in CUSTOMS_STEPS and principal.role == Role.CUSTOMS:
        guide = readable(session, principal, guide_id)
    else:
        raise PermissionDenied(f"a {principal.role.value} cannot {name} a guide")
    state = State(guide.state)
    target = STEPS[name][1]
    if state == target and name != "reject":
        return guide, True
    content = GuideContent.model_validate(guide.content)
    guide.state = advance(state, name, content, today())
    guide.updated_at = datetime.now(UTC)
    if name == "publish":
        guide.published_content = guide.content
        guide.published_version = guide.version
        guide.published_expires = guide.expires
        guide.published_brand_key = guide.brand_key
        guide.published_name_key = guide.name_key
        guide.published_at = datetime.now(UTC)
        guide.published_by = principal.organization.name
    _record(session, principal, guide, name, note=note)
    session.commit()
    forget_essentials()
    return guide, False


def import_file(
    session: Session,
    principal: Principal,
    raw: bytes,
    kind: str,
    registry: LocationRegistry,
) -> dict[str, Any]:
    """Create or update every guide of the file in one transaction: nothing is stored when
    any guide is invalid, names a product the holder does not hold or an unknown port."""
    parsed = imports.parse_file(raw, kind)
    owned = _owned_gtins(session, principal.organization)
    problems = []
    for where, content in parsed:
        if not owns(session, principal.organization, content, owned):
            problems.append(
                f"{where}: {content.product_key} is not a product of {principal.organization.name!r}"
            )
            continue
        try:
            _check_routes(registry, content)
        except InvalidInput as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise InvalidGuide(
            f"{len(problems)} problem(s), nothing imported: " + "; ".join(problems[:5]),
            problems[:50],
        )
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    ids = []
    try:
        for _, content in parsed:
            existing = _find(session, principal.organization_id, content.product_key)
            written = _write(session, principal, content, existing)
            counts[
                "created" if written.created else "updated" if written.changed else "unchanged"
            ] += 1
            ids.append(written.guide.guide_id)
        session.commit()
        forget_essentials()
    except Exception:
        session.rollback()
        raise
    return {**counts, "guideIds": ids}


# ---------------------------------------------------------------------------- photos


def add_photo(
    session: Session,
    principal: Principal,
    guide_id: str,
    kind: str,
    caption: str,
    raw: bytes,
    *,
    max_bytes: int,
    directory: Path | None,
) -> GuidePhoto:
    """Store a photo of the genuine product or a known fake: checked from its bytes,
    re-encoded without metadata; the same photo added twice is stored once."""
    guide = _own(session, principal, guide_id)
    clean = images.sanitize(raw, max_bytes)
    digest = hashlib.sha256(clean.data).hexdigest()
    for photo in photos_of(session, guide):
        if photo.sha256 == digest and photo.kind == kind:
            return photo
    if len(photos_of(session, guide)) >= MAX_PHOTOS:
        raise InvalidInput(f"a guide holds at most {MAX_PHOTOS} photos")
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{digest}.bin"
        if not target.exists():
            partial = target.with_suffix(".part")
            partial.write_bytes(clean.data)
            partial.replace(target)  # never a half-written file under the final name
    assert guide.id is not None
    if guide.state != State.DRAFT or guide.version == guide.published_version:
        # A photo is part of what customs reviews: added to a version already submitted or
        # published, it starts the next version (a draft), and officers keep seeing the
        # published version's photos until that one is published.
        guide.version += 1
        guide.state = State.DRAFT
    photo = GuidePhoto(
        photo_id=str(uuid.uuid4()),
        guide_pk=guide.id,
        kind=kind,
        caption=caption,
        mime=clean.mime,
        width=clean.width,
        height=clean.height,
        size=len(clean.data),
        sha256=digest,
        version=guide.version,
        data=None if directory is not None else clean.data,
    )
    session.add(photo)
    _record(
        session, principal, guide, "photo", note=f"{kind} photo {photo.photo_id} {caption}".strip()
    )
    guide.updated_at = datetime.now(UTC)
    session.commit()
    forget_essentials()
    return photo


def photo_data(photo: GuidePhoto, directory: Path | None) -> bytes:
    if photo.data is not None:
        return photo.data
    if directory is None:
        raise NotFound(f"photo {photo.photo_id} is stored in a directory that is not configured")
    return (directory / f"{photo.sha256}.bin").read_bytes()


def photo(session: Session, principal: Principal, guide_id: str, photo_id: str) -> GuidePhoto:
    guide = readable(session, principal, guide_id)
    found = session.exec(
        select(GuidePhoto).where(GuidePhoto.photo_id == photo_id, GuidePhoto.guide_pk == guide.id)
    ).first()
    if found is None or found.version > _readable_version(principal, guide):
        raise NotFound(f"no photo {photo_id} in guide {guide_id}")
    return found


def _readable_version(principal: Principal, guide: Guide) -> int:
    """The newest version of `guide` the caller reads: the holder its current one; customs
    the current one once submitted for review, else the published one."""
    if principal.role != Role.CUSTOMS or guide.state in SHOWN_TO_CUSTOMS:
        return guide.version
    return guide.published_version or 0


def render_pdf(
    session: Session, principal: Principal, guide_id: str, directory: Path | None
) -> bytes:
    """The printable guide: for customs the published version (or the one under review)."""
    guide = readable(session, principal, guide_id)
    shown = shape(session, principal, guide, photos=False)
    content = GuideContent.model_validate(shown["content"])
    holder = session.get(Organization, guide.holder_id)
    version = int(shown["version"] or guide.version)
    pictures = [
        pdf.Photo(p.kind, p.caption, photo_data(p, directory))
        for p in photos_of(session, guide, version)
    ]
    return pdf.render(
        content,
        holder=holder.name if holder else "",
        version=version,
        state=guide.state,
        dated=guide.updated_at.date(),
        photos=pictures,
    )


# ---------------------------------------------------------------------------- for others


def published_for(
    session: Session, gtin: str, holder_id: int | None = None
) -> tuple[Guide, GuideContent] | None:
    """The published, unexpired guide officers rely on for `gtin`: the GTIN's own guide
    first, else that of the longest company prefix it falls under. With `holder_id`, only
    that holder's."""
    keys = [gtin] + [f"prefix:{gtin[1 : 1 + n]}" for n in range(12, 5, -1)]
    query = (
        select(Guide)
        .where(col(Guide.product).in_(keys))
        .where(col(Guide.published_version).is_not(None))
        .where(or_(col(Guide.published_expires).is_(None), col(Guide.published_expires) >= today()))
    )
    if holder_id is not None:
        query = query.where(Guide.holder_id == holder_id)
    found = {g.product: g for g in session.exec(query).all()}
    for key in keys:
        if key in found:
            guide = found[key]
            assert guide.published_content is not None
            return guide, GuideContent.model_validate(guide.published_content)
    return None


def essentials(session: Session, gtin: str) -> dict[str, Any] | None:
    """The `guide` object of a customs caller's verify answer: the guide's essentials and
    its photo links, when a published guide exists."""
    found = published_for(session, gtin)
    if found is None:
        return None
    guide, content = found
    return {
        "guideId": guide.guide_id,
        "version": guide.published_version,
        "expires": guide.published_expires.isoformat() if guide.published_expires else None,
        **content.essentials(),
        "photos": [
            photo_json(guide, p) for p in photos_of(session, guide, guide.published_version)
        ][:6],
        "url": f"/v1/guides/{guide.guide_id}",
    }


#: Verify answers read a guide's essentials from here: guides change rarely, and an officer's
#: verification should not pay a database query for them (docs/guides.md). Every guide write
#: in this process clears it; other gateway processes see a change within ESSENTIALS_TTL.
ESSENTIALS_TTL = 30.0
_essentials_cache: dict[tuple[int, str], tuple[float, dict[str, Any] | None]] = {}


def cached_essentials(engine: Engine, gtin: str) -> tuple[bool, dict[str, Any] | None]:
    """(True, the cached `essentials` of `gtin`) when fresh, else (False, None): no I/O, safe
    on the event loop."""
    hit = _essentials_cache.get((id(engine), gtin))
    if hit is None or time.monotonic() - hit[0] >= ESSENTIALS_TTL:
        return False, None
    return True, hit[1]


def load_essentials(engine: Engine, gtin: str) -> dict[str, Any] | None:
    """`essentials` read from the database and kept for ESSENTIALS_TTL seconds."""
    with Session(engine) as session:
        value = essentials(session, gtin)
    if len(_essentials_cache) >= 100_000:  # bounded: one entry per GTIN scanned
        _essentials_cache.clear()
    _essentials_cache[(id(engine), gtin)] = (time.monotonic(), value)
    return value


def forget_essentials() -> None:
    _essentials_cache.clear()


def default_route_policy(session: Session, holder_id: int, gtin: str) -> dict[str, Any] | None:
    """A new batch's route policy when its enrollment gives none: the holder's published
    guide's authorised markets, routes and importers (docs/guides.md)."""
    found = published_for(session, gtin, holder_id)
    return None if found is None else found[1].route_policy()


def unit_msrp(session: Session, gtin: str, currency: str) -> int | None:
    """A case line's unit MSRP from the published guide of its GTIN, when the guide's
    currency is the case's (no conversion is guessed)."""
    found = published_for(session, gtin)
    if found is None:
        return None
    content = found[1]
    if content.msrp_cents is None or content.currency != currency:
        return None
    return content.msrp_cents


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Guide)).one())
