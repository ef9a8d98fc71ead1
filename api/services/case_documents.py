"""A case's documents for a reader: which exist (issued by the actions taken so far) and
each as PDF drawn from the case as the reader may see it (the service's redacted view,
`cases.shown`), so a rights holder's copy holds only what its stage discloses."""

from __future__ import annotations

from sqlmodel import Session

from api import case_documents
from api.case_models import Case
from api.models import Organization, utcnow
from api.principal import Principal
from api.services import cases
from cases.disclosure import Viewer
from cases.profiles import all_profiles, get_profile
from ledger.errors import Conflict, NotFound


def kinds() -> set[str]:
    """The kinds this module draws."""
    return set(case_documents.KINDS)


def known_kinds() -> list[str]:
    """Every document kind some profile issues (the ones this module can draw)."""
    return sorted({d for p in all_profiles().values() for d in p.documents()})


def issued(case: Case) -> list[str]:
    """The kinds the case's actions have issued so far, first issue first, once each."""
    names = [d["name"] for d in (case.details or {}).get("documents", [])]
    return list(dict.fromkeys(n for n in names if n in case_documents.KINDS))


def _check(case: Case, kind: str) -> None:
    if kind not in case_documents.KINDS:
        raise NotFound(f"no document kind {kind!r}; kinds: {', '.join(known_kinds())}")
    profile = get_profile(case.profile)
    if kind not in profile.documents():
        raise NotFound(f"profile {profile.id!r} issues no {kind!r}")
    if kind not in issued(case):
        raise Conflict(
            f"document {kind!r} is not available in state {case.state!r}; "
            f"issued so far: {', '.join(issued(case)) or 'none'}"
        )


def _pdf(
    session: Session, case: Case, viewer: Viewer, kind: str, reader: int | None = None
) -> bytes:
    _check(case, kind)
    view = cases.shown(session, case, viewer, utcnow(), reader)
    agency = session.get(Organization, case.agency_id)
    name = agency.name if agency is not None else "Customs"
    return case_documents.render(kind, view, get_profile(case.profile).title, name)


def pdf(session: Session, principal: Principal, case_id: str, kind: str) -> bytes:
    """Document `kind` of the case for the caller: 404 for a case it may not know of or a
    kind no profile issues, 409 (naming the state) for one this case has not issued yet."""
    case, viewer = cases.load(session, principal, case_id)
    return _pdf(session, case, viewer, kind, principal.organization_id)


def pdf_by_link(session: Session, token: str, kind: str) -> bytes:
    """The importer's / declarant's copy through its single-use link (reading does not
    spend the link)."""
    case = cases.case_of_link(session, token)
    return _pdf(session, case, Viewer.IMPORTER, kind)


def listed(session: Session, principal: Principal, case_id: str) -> list[str]:
    """The documents the caller may download for the case (each drawn for its view)."""
    case, _ = cases.load(session, principal, case_id)
    return issued(case)
