"""GS1 Lightweight Messaging Standard for Verification of Product Identifiers: the answer
BorderLedger gives to a US DSCSA Verification Router Service (VRS) request.

Request (the route lives in `api.routes.gs1`)::

    GET /v1/gs1/verify/gtin/{gtin}/lot/{lot}/ser/{serial}
        ?exp=YYMMDD&linkType=verificationService&context=dscsaSaleableReturn
        &reqGLN=<13 digits>&corrUUID=<uuid>

Response (HTTP 200 only)::

    {"verificationTimestamp": "2025-01-31T10:00:00.000Z", "responderGLN": "...",
     "data": {"verified": false, "verificationFailureReason": "No_match_GTIN_Serial"},
     "corrUUID": "..."}

Sources checked (spelling and casing are copied from them, not guessed):

- GS1, *GS1 Lightweight Messaging Standard for Verification of Product Identifiers*,
  release 1.0 (Dec 2018, https://ref.gs1.org/standards/lightweight-verification-messaging/1.0.0/)
  and 1.1.0 (Jul 2019, listed at .../lightweight-verification-messaging/archive); release 1.0.2
  transcribed at https://readkong.com/page/gs1-lightweight-messaging-standard-for-verification-of-5863564
  (only the front matter of these was retrievable here). The field names
  `verificationTimestamp`, `responderGLN`, `data.verified`, `data.verificationFailureReason`,
  `data.additionalInfo`, `corrUUID` and the request parameters `exp`,
  `linkType=verificationService`, `context=dscsaSaleableReturn`, `reqGLN`, `corrUUID` are
  taken from implementations of it: the QU4RTET responder below and VRS client code (SAP ICH,
  Movilitas) that send exactly this URL.
- GS1 US, *Implementation Guideline - GS1 Lightweight Messaging Standard for DSCSA Verification
  of Product Identifiers*, release 1.3, as reproduced by two VRS providers:
  https://support.movilitas.cloud/support/solutions/articles/16000153319 (code lists) and
  https://support.movilitas.cloud/support/solutions/articles/16000153351 (HTTP status codes),
  and https://support.lspedia.com/support/solutions/articles/73000630475 (200 scenarios).
  verificationFailureReason: `Manufacturer_policy`, `No_match_GTIN_Serial`,
  `No_match_GTIN_Serial_Lot_Expiry`, `No_match_GTIN_Serial_Lot`, `No_match_GTIN_Serial_Expiry`,
  `No_reason_provided`, `Not_for_re-distribution`. additionalInfo: `Expired`,
  `ExpirationExtended`, `Recalled`, `Suspect`, `Illegitimate`. HTTP: "Only a 200 response will
  issue a JSON payload"; 400 "The request was not formatted properly"; 401; 403; 404 "GTIN may
  be missing in the Lookup Directory/Resolver".
- The guideline's disposition rules as encoded in SAP ICH test code (public GitHub): B1
  "Product Identifier matches … recalled" → verified true + `Recalled`; B2 → false + `Recalled`
  + `Manufacturer_policy`; C1.1 → false + `Suspect` + `Not_for_re-distribution`; C1.2 → false +
  `Illegitimate` + `Not_for_re-distribution`; B1 Expiration → true + `Expired`.
- SerialLab QU4RTET's open-source VRS responder (quartet_vrs): same failure codes, plus
  `GTIN_not_found` / `GTIN_not_registered`, which are *its own extensions*, not in the code
  list; its comment notes that release 1.0.2 had one additionalInfo value, lower-case
  `recalled`. We follow the current (1.3) code list: `Recalled`.

Decisions that follow from the sources (docs/gs1-verification.md has the full table):

- A GTIN no batch was registered for is answered **HTTP 404** (JSON error body, code
  `gtin_not_found`), the guideline's status for a GTIN the responder does not serve, not a
  `GTIN_not_found` reason a client validating the code list would reject.
- A malformed request (GTIN check digit, serial/lot outside GS1 AI 21/10 rules, `exp` not a
  valid YYMMDD, unknown `linkType`, bad `reqGLN`/`corrUUID`) is **HTTP 400** with a JSON error
  body: it was "not formatted properly", and saying `verified: false` about an identifier that
  cannot exist would look like a counterfeit finding when it is a scanning or typing error.
- Recalled: verified **true** + `Recalled` (rule B1: the identifier matches; the recall is
  information). Stolen: **false** + `Not_for_re-distribution` + `Illegitimate` (DSCSA's
  "illegitimate product" includes stolen product; rule C1.2). Destroyed or decommissioned: a
  code that should no longer circulate, so **false** + `Not_for_re-distribution` + `Suspect`
  (rule C1.1; a potential suspect to investigate, never a declared fake).
- A batch registered on chain but not enrolled through this gateway cannot be checked for
  its serials here: **false** + `No_reason_provided`.

This module has no web framework imports: `assess` is plain domain code over the catalog.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from api.catalog import Catalog
from api.registrations import Registrations
from api.verification import Judgement, Scanned, verify
from ledger.errors import InvalidInput
from ledger.gs1 import gtin_check_digit
from ledger.verdicts import Reason, Verdict

# ----------------------------------------------------------------------------- code lists


class FailureReason(StrEnum):
    """`data.verificationFailureReason` values (GS1 US guideline release 1.3 code list)."""

    MANUFACTURER_POLICY = "Manufacturer_policy"
    NO_MATCH_GTIN_SERIAL = "No_match_GTIN_Serial"
    NO_MATCH_GTIN_SERIAL_LOT_EXPIRY = "No_match_GTIN_Serial_Lot_Expiry"
    NO_MATCH_GTIN_SERIAL_LOT = "No_match_GTIN_Serial_Lot"
    NO_MATCH_GTIN_SERIAL_EXPIRY = "No_match_GTIN_Serial_Expiry"
    NO_REASON_PROVIDED = "No_reason_provided"
    NOT_FOR_REDISTRIBUTION = "Not_for_re-distribution"
    #: Not in the guideline's list but sent by deployed responders (QU4RTET) and expected by
    #: BorderLedger's users; only ever sent with HTTP 404, the guideline's status for it.
    GTIN_NOT_FOUND = "GTIN_not_found"


class AdditionalInfo(StrEnum):
    """`data.additionalInfo` values (GS1 US guideline release 1.3 code list)."""

    EXPIRED = "Expired"
    EXPIRATION_EXTENDED = "ExpirationExtended"
    RECALLED = "Recalled"
    SUSPECT = "Suspect"
    ILLEGITIMATE = "Illegitimate"


#: `linkType` spellings accepted: the plain one VRS clients send, and the GS1 Web Vocabulary
#: CURIE / IRI used by GS1 Digital Link 1.1+ resolvers.
LINK_TYPES = frozenset(
    {"verificationService", "gs1:verificationService", "https://gs1.org/voc/verificationService"}
)
DEFAULT_CONTEXT = "dscsaSaleableReturn"
_CONTEXT = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_GLN = re.compile(r"[0-9]{13}")
_YYMMDD = re.compile(r"[0-9]{6}")


# ------------------------------------------------------------------------ response models


class VerificationData(BaseModel):
    """`data`: `verified`, and on failure the reason; `additionalInfo` when there is some."""

    model_config = ConfigDict(populate_by_name=True)

    verified: bool
    verification_failure_reason: FailureReason | None = Field(
        None, alias="verificationFailureReason", description="present when verified is false"
    )
    additional_info: AdditionalInfo | None = Field(
        None, alias="additionalInfo", description="e.g. Recalled; omitted when there is none"
    )


class VerificationResponse(BaseModel):
    """The GS1 verification response message (HTTP 200)."""

    model_config = ConfigDict(populate_by_name=True)

    verification_timestamp: str = Field(
        alias="verificationTimestamp",
        description="ISO 8601, UTC",
        examples=["2025-01-31T10:00:00.000Z"],
    )
    responder_gln: str = Field(alias="responderGLN", description="GLN of this responder")
    data: VerificationData
    corr_uuid: str | None = Field(
        None, alias="corrUUID", description="the request's corrUUID, echoed; omitted if none"
    )


# ---------------------------------------------------------------------- request validation


@dataclass(frozen=True)
class Gs1Request:
    """A validated verification request."""

    scanned: Scanned  # GTIN-14, serial and lot, validated by `Scanned.from_fields`
    exp: str
    context: str
    req_gln: str | None
    corr_uuid: str | None


def parse_request(
    gtin: str,
    lot: str,
    serial: str,
    exp: str | None,
    link_type: str | None = None,
    context: str | None = None,
    req_gln: str | None = None,
    corr_uuid: str | None = None,
    *,
    today: date | None = None,
) -> Gs1Request:
    """Validate a request's parts; raises `InvalidInput` naming the first bad one."""
    scanned = Scanned.from_fields(gtin, serial, lot)
    if scanned.lot is None:
        raise InvalidInput("lot must not be empty")
    if exp is None or exp == "":
        raise InvalidInput("exp (expiry date, YYMMDD) is required")
    parse_yymmdd(exp, today=today)
    if link_type is not None and link_type not in LINK_TYPES:
        raise InvalidInput(f"linkType {link_type!r} is not supported; use 'verificationService'")
    if context is not None and not _CONTEXT.fullmatch(context):
        raise InvalidInput(f"context {context!r} is not a valid context value")
    if req_gln is not None:
        validate_gln(req_gln, "reqGLN")
    if corr_uuid is not None and not _UUID.fullmatch(corr_uuid):
        raise InvalidInput(f"corrUUID {corr_uuid!r} is not a UUID (8-4-4-4-12 hex digits)")
    return Gs1Request(scanned, exp, context or DEFAULT_CONTEXT, req_gln, corr_uuid)


def validate_gln(value: str, what: str = "GLN") -> str:
    """Return `value` if it is a GLN: 13 digits with a valid GS1 mod-10 check digit."""
    if not _GLN.fullmatch(value):
        raise InvalidInput(f"{what} {value!r} must be 13 digits")
    expected = gtin_check_digit(value[:12])
    if int(value[12]) != expected:
        raise InvalidInput(
            f"{what} {value!r} has check digit {value[12]}; the digits before it give {expected}"
        )
    return value


def parse_yymmdd(value: str, *, today: date | None = None) -> date:
    """A GS1 date (AI 17 style, YYMMDD) as a date.

    The century follows the GS1 General Specifications (7.12): a year more than 50 years ahead
    of this one belongs to the previous century, one more than 49 years behind to the next.
    A day of `00` means the last day of the month.
    """
    if not isinstance(value, str) or not _YYMMDD.fullmatch(value):
        raise InvalidInput(f"date {value!r} must be six digits, YYMMDD")
    yy, mm, dd = int(value[:2]), int(value[2:4]), int(value[4:])
    if not 1 <= mm <= 12:
        raise InvalidInput(f"date {value!r} has month {mm:02d}; expected 01-12")
    this_year = (today or datetime.now(UTC).date()).year
    century = this_year - this_year % 100
    difference = yy - this_year % 100
    if difference >= 51:
        century -= 100
    elif difference <= -50:
        century += 100
    year = century + yy
    last = calendar.monthrange(year, mm)[1]
    if dd == 0:
        dd = last
    elif dd > last:
        raise InvalidInput(f"date {value!r} has day {dd:02d}; {year}-{mm:02d} has {last} days")
    return date(year, mm, dd)


def _same_expiry(requested: str, enrolled: str | None, today: date) -> bool:
    if enrolled is None:
        return False  # nothing on record to vouch for: do not claim the expiry matches
    try:
        return parse_yymmdd(requested, today=today) == parse_yymmdd(enrolled, today=today)
    except InvalidInput:
        return requested == enrolled


# -------------------------------------------------------------------------------- assessing


@dataclass(frozen=True)
class Assessment:
    """What to answer, and what to record about it."""

    data: VerificationData | None  # None: no batch was ever registered for this GTIN
    judgement: Judgement  # of the identifier as presented (GTIN + serial + lot)
    verdict: Verdict  # recorded with the scan


def assess(
    catalog: Catalog,
    request: Gs1Request,
    *,
    stale_after: float = 30.0,
    today: date | None = None,
    now: datetime | None = None,
    registrations: Registrations | None = None,
) -> Assessment:
    """Judge a GS1 verification request against the index (see the module docstring).

    A batch enrolled here whose registration is not indexed yet is not verified (the
    standard has no "pending"; no failure reason is given) but recorded PENDING, never
    suspect. The GS1 request names no location, so no detector finding can apply here."""
    today = today or datetime.now(UTC).date()
    scanned = request.scanned
    exact = verify(catalog, scanned, stale_after=stale_after, now=now, registrations=registrations)
    if Reason.GTIN_UNKNOWN in exact.reasons:
        return Assessment(None, exact, exact.verdict)
    if exact.verdict == Verdict.PENDING:
        return Assessment(_failed(FailureReason.NO_REASON_PROVIDED), exact, Verdict.PENDING)

    if Reason.SERIAL_IN_BATCH in exact.reasons:
        data = _matched(exact, request.exp, today)
        verdict = exact.verdict if data.verified else _suspect_unless_flagged(exact.verdict)
        return Assessment(data, exact, verdict)

    # Not in the lot presented: is this GTIN + serial in another lot of the GTIN?
    anywhere = verify(
        catalog,
        Scanned(scanned.gtin, scanned.serial, None, None, scanned.kind),
        stale_after=stale_after,
        now=now,
    )
    if Reason.SERIAL_IN_BATCH in anywhere.reasons:
        reason = (
            FailureReason.NO_MATCH_GTIN_SERIAL_LOT
            if _same_expiry(request.exp, anywhere.expiry, today)
            else FailureReason.NO_MATCH_GTIN_SERIAL_LOT_EXPIRY
        )
    elif _all_provable(catalog, scanned.gtin):
        reason = FailureReason.NO_MATCH_GTIN_SERIAL
    else:
        reason = FailureReason.NO_REASON_PROVIDED  # some batch's serials cannot be checked here
    return Assessment(_failed(reason), exact, Verdict.COUNTERFEIT_SUSPECT)


def _matched(judgement: Judgement, exp: str, today: date) -> VerificationData:
    """GTIN, serial and lot match: check the expiry, then the status."""
    if not _same_expiry(exp, judgement.expiry, today):
        return _failed(FailureReason.NO_MATCH_GTIN_SERIAL_EXPIRY)
    reasons = judgement.reasons
    if Reason.ITEM_STOLEN in reasons:
        return _failed(FailureReason.NOT_FOR_REDISTRIBUTION, AdditionalInfo.ILLEGITIMATE)
    if Reason.ITEM_DESTROYED in reasons or Reason.ITEM_DECOMMISSIONED in reasons:
        return _failed(FailureReason.NOT_FOR_REDISTRIBUTION, AdditionalInfo.SUSPECT)
    if Reason.BATCH_RECALLED in reasons or Reason.ITEM_RECALLED in reasons:
        return VerificationData(verified=True, additional_info=AdditionalInfo.RECALLED)
    if parse_yymmdd(exp, today=today) < today:
        return VerificationData(verified=True, additional_info=AdditionalInfo.EXPIRED)
    return VerificationData(verified=True)


def _failed(reason: FailureReason, info: AdditionalInfo | None = None) -> VerificationData:
    return VerificationData(
        verified=False, verification_failure_reason=reason, additional_info=info
    )


def _suspect_unless_flagged(verdict: Verdict) -> Verdict:
    if verdict in (Verdict.STOLEN, Verdict.DECOMMISSIONED, Verdict.RECALLED):
        return verdict
    return Verdict.COUNTERFEIT_SUSPECT


def _all_provable(catalog: Catalog, gtin: str) -> bool:
    batches = catalog.snapshot().batches_by_gtin.get(gtin, [])
    return all(catalog.provable(b.batch_id) is not None for b in batches)


def timestamp(now: datetime | None = None) -> str:
    """`verificationTimestamp`: ISO 8601 in UTC with milliseconds, e.g. 2025-01-31T10:00:00.000Z."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def response(
    data: VerificationData, responder_gln: str, corr_uuid: str | None, now: datetime | None = None
) -> VerificationResponse:
    return VerificationResponse(
        verification_timestamp=timestamp(now),
        responder_gln=responder_gln,
        data=data,
        corr_uuid=corr_uuid,
    )


__all__ = [
    "AdditionalInfo",
    "Assessment",
    "FailureReason",
    "Gs1Request",
    "VerificationData",
    "VerificationResponse",
    "assess",
    "parse_request",
    "parse_yymmdd",
    "response",
    "timestamp",
    "validate_gln",
]
