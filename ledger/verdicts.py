"""The verdict engine: what a verdict and its reasons are, and the rules that decide them.

Three judges read the same registry state in different ways — the gateway from its index
(`api.verification`), the scanner from a signed trust bundle with no network
(`scanner.offline`), and `borderledger check` from the registry's view functions
(`chain.check`). They gather evidence their own way, and hand it here to be named and weighed,
so an officer reads every verdict alike and the three cannot drift apart:

- `Verdict` and `Reason`, the stable strings clients switch on (docs/reason-codes.md);
- `signer_reason`, the registry's `isSignerValidFor` rule;
- `STATUS_REASONS` / `status_reason`, which status gives which reason;
- `decide`, the order of judgement;
- `FINDING_REASONS` / `finding_reasons`, the reasons detector findings add to a scan's;
- `with_findings`, what a scan's findings make of the verdict (the big word never says
  plain "genuine" when a finding on the same scan says otherwise);
- `summary`, the sentence shown with a verdict, built from structured facts (`FindingFacts`,
  `Pending`) in this one place so that every judge words it alike.

Core module: imports only `ledger` core modules (no web3, no web framework, no detector).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ledger.models import Status


class Verdict(StrEnum):
    GENUINE = "GENUINE"
    #: The serial is proven in its batch but no signature was presented. Only a judge holding
    #: the batch's tree (the gateway, `borderledger check --batch-dir`) can give it.
    GENUINE_UNSIGNED = "GENUINE_UNSIGNED"
    #: Genuine goods off the market they were made for (a diversion finding on a GENUINE
    #: verdict): gray-market goods, lawful or detainable depending on the recordation.
    GENUINE_DIVERTED = "GENUINE_DIVERTED"
    #: Not suspect: the batch was enrolled at this gateway and its registration is sent (or
    #: queued), but this gateway's index does not show it yet. Scan again shortly.
    PENDING = "PENDING"
    COUNTERFEIT_SUSPECT = "COUNTERFEIT_SUSPECT"
    RECALLED = "RECALLED"
    STOLEN = "STOLEN"
    DECOMMISSIONED = "DECOMMISSIONED"
    #: Never from the gateway: no signature, and membership could not be checked.
    UNVERIFIED = "UNVERIFIED"


class Reason(StrEnum):
    GTIN_UNKNOWN = "GTIN_UNKNOWN"
    BATCH_UNKNOWN = "BATCH_UNKNOWN"
    SERIAL_UNKNOWN = "SERIAL_UNKNOWN"
    SERIAL_NOT_VERIFIABLE = "SERIAL_NOT_VERIFIABLE"
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNER_UNKNOWN = "SIGNER_UNKNOWN"
    SIGNER_FOREIGN = "SIGNER_FOREIGN"
    SIGNER_REVOKED = "SIGNER_REVOKED"
    SIGNATURE_VALID = "SIGNATURE_VALID"
    SERIAL_IN_BATCH = "SERIAL_IN_BATCH"
    BATCH_RECALLED = "BATCH_RECALLED"
    ITEM_RECALLED = "ITEM_RECALLED"
    ITEM_STOLEN = "ITEM_STOLEN"
    ITEM_DECOMMISSIONED = "ITEM_DECOMMISSIONED"
    ITEM_DESTROYED = "ITEM_DESTROYED"
    INDEX_STALE = "INDEX_STALE"
    #: The batch is enrolled at this gateway, its registration not yet in the index (PENDING).
    REGISTRATION_PENDING = "REGISTRATION_PENDING"
    #: Added when the scan raised a detector finding (`finding_reasons`), never by a judge.
    CLONE_SUSPECT = "CLONE_SUSPECT"
    DIVERSION_SUSPECT = "DIVERSION_SUSPECT"
    #: Offline only (see OFFLINE_ONLY): Merkle membership was not checked (no salt or proof).
    MEMBERSHIP_NOT_CHECKED = "MEMBERSHIP_NOT_CHECKED"
    #: Offline only: the trust bundle is older than the configured maximum age.
    BUNDLE_STALE = "BUNDLE_STALE"


#: Reasons the gateway never gives: it holds every batch's tree and a live index. The offline
#: verifier gives both; `borderledger check` without the batch's files says
#: MEMBERSHIP_NOT_CHECKED.
OFFLINE_ONLY = frozenset({Reason.MEMBERSHIP_NOT_CHECKED, Reason.BUNDLE_STALE})

#: Reasons that make an item a potential suspect (verdict COUNTERFEIT_SUSPECT).
SUSPECT_REASONS = frozenset(
    {
        Reason.GTIN_UNKNOWN,
        Reason.BATCH_UNKNOWN,
        Reason.SERIAL_UNKNOWN,
        Reason.SIGNATURE_INVALID,
        Reason.SIGNER_UNKNOWN,
        Reason.SIGNER_FOREIGN,
        Reason.SIGNER_REVOKED,
        Reason.ITEM_DESTROYED,
    }
)

#: (status, set on the whole batch?) → the reason it gives.
STATUS_REASONS: dict[tuple[Status, bool], Reason] = {
    (Status.RECALLED, True): Reason.BATCH_RECALLED,
    (Status.RECALLED, False): Reason.ITEM_RECALLED,
    (Status.STOLEN, True): Reason.ITEM_STOLEN,
    (Status.STOLEN, False): Reason.ITEM_STOLEN,
    (Status.DECOMMISSIONED, True): Reason.ITEM_DECOMMISSIONED,
    (Status.DECOMMISSIONED, False): Reason.ITEM_DECOMMISSIONED,
    (Status.DESTROYED, True): Reason.ITEM_DESTROYED,
    (Status.DESTROYED, False): Reason.ITEM_DESTROYED,
}

#: Detector alert class (`detector.rules.AlertClass` value) → the reason its finding adds.
#: Clone and diversion findings also change the verdict (`with_findings`). Status findings add
#: nothing (the ITEM_* reasons already say it).
FINDING_REASONS: dict[str, Reason] = {
    "clone": Reason.CLONE_SUSPECT,
    "diversion": Reason.DIVERSION_SUSPECT,
}

SUMMARIES: dict[Verdict, str] = {
    Verdict.GENUINE: "Genuine: signed by the rights holder and registered on chain.",
    Verdict.GENUINE_UNSIGNED: "Registered serial; no signature was presented, so a copied code "
    "cannot be ruled out.",
    Verdict.GENUINE_DIVERTED: "Genuine, diverted: off the market it was made for. Gray-market "
    "goods: check the recordation before release.",
    Verdict.PENDING: "Registration pending: this gateway's index does not show the batch yet. "
    "Scan again in a few seconds.",
    Verdict.COUNTERFEIT_SUSPECT: "Potential suspect: the ledger does not vouch for this item. "
    "Investigate.",
    Verdict.RECALLED: "Recalled by the rights holder: do not release.",
    Verdict.STOLEN: "Reported stolen by the rights holder: hold and notify.",
    Verdict.DECOMMISSIONED: "Already decommissioned (pack inactive): a code seen again may be "
    "copied.",
    Verdict.UNVERIFIED: "Not verifiable offline: no signature, and serials cannot be checked "
    "without the gateway. Hold until verified online.",
}
_OFFLINE_GENUINE = (
    "Genuine: signed by the rights holder and registered on chain "
    "(offline: membership in the batch not checked)."
)

#: One line per reason, for people (the CLI prints it); docs/reason-codes.md has the full text.
DESCRIPTIONS: dict[Reason, str] = {
    Reason.GTIN_UNKNOWN: "no batch of this GTIN is registered",
    Reason.BATCH_UNKNOWN: "the GTIN is known, this lot is not",
    Reason.SERIAL_UNKNOWN: "the serial is in no registered batch of this GTIN",
    Reason.SERIAL_NOT_VERIFIABLE: "the batch's tree is not held here: membership cannot be shown",
    Reason.SIGNATURE_MISSING: "no signature was presented",
    Reason.SIGNATURE_INVALID: "the signature is malformed or malleable",
    Reason.SIGNER_UNKNOWN: "the signature recovers to a key nobody registered",
    Reason.SIGNER_FOREIGN: "the key belongs to another rights holder than the batch's",
    Reason.SIGNER_REVOKED: "the key was not active when the batch was registered",
    Reason.SIGNATURE_VALID: "signed by a key of the holder, active at registration",
    Reason.SERIAL_IN_BATCH: "the Merkle proof shows the serial in its registered batch",
    Reason.BATCH_RECALLED: "the whole batch was recalled",
    Reason.ITEM_RECALLED: "the item was recalled",
    Reason.ITEM_STOLEN: "the item was reported stolen",
    Reason.ITEM_DECOMMISSIONED: "the item was decommissioned",
    Reason.ITEM_DESTROYED: "the item was destroyed: it cannot be here",
    Reason.INDEX_STALE: "the chain index has stopped advancing",
    Reason.REGISTRATION_PENDING: "enrolled here; the registration is not in the index yet",
    Reason.CLONE_SUSPECT: "the scan raised a clone finding",
    Reason.DIVERSION_SUSPECT: "the scan raised a diversion finding",
    Reason.MEMBERSHIP_NOT_CHECKED: "membership in the batch was not checked (no salt or proof)",
    Reason.BUNDLE_STALE: "the trust bundle is older than the maximum age",
}


class SignerKey(Protocol):
    """A registered tag-signing key as any judge holds it (index row, bundle entry, chain
    record). `revoked_at` is None, or 0 as the chain stores it, while never revoked."""

    @property
    def holder(self) -> str: ...

    @property
    def added_at(self) -> int: ...

    @property
    def revoked_at(self) -> int | None: ...


def signer_reason(
    key: SignerKey | None,
    batch_holder: str,
    registered_at: int,
    holder_revoked_at: int | None = None,
) -> Reason:
    """SIGNATURE_VALID when `key` may sign for a batch of `batch_holder` registered at
    `registered_at`, else why not (None: the key was never registered).

    The registry's `isSignerValidFor`: a revoked key still vouches for batches registered
    while it was active, so revoking a key does not turn tags already shipped into suspects.
    A key counts as revoked at the earlier of its own revocation and its holder's
    (`holder_revoked_at`, None or 0 while the holder is accredited): a revoked rights holder's
    batches registered before its revocation stay as they were, and nothing later is vouched
    for."""
    if key is None:
        return Reason.SIGNER_UNKNOWN
    if key.holder != batch_holder:
        return Reason.SIGNER_FOREIGN
    revoked_at = key.revoked_at or 0
    if holder_revoked_at and (not revoked_at or holder_revoked_at < revoked_at):
        revoked_at = holder_revoked_at
    if revoked_at and not (key.added_at <= registered_at < revoked_at):
        return Reason.SIGNER_REVOKED
    return Reason.SIGNATURE_VALID


def status_reason(status: Status, batch_level: bool) -> Reason | None:
    """The reason a status gives (None while active); `batch_level`: set on the whole batch."""
    return STATUS_REASONS.get((status, batch_level))


def finding_reasons(reasons: Collection[str], alert_classes: Iterable[str]) -> list[str]:
    """The reason codes the findings of `alert_classes` add to a scan's `reasons`: in the
    findings' order, each once, none already there."""
    added: list[str] = []
    for alert_class in alert_classes:
        reason = FINDING_REASONS.get(alert_class)
        if reason is not None and reason.value not in reasons and reason.value not in added:
            added.append(reason.value)
    return added


def decide(reasons: Collection[Reason], status: Status) -> Verdict:
    """The verdict, first match wins: a suspect reason; a registration pending; stolen, recalled, decommissioned; a
    valid signature; a serial proven in its batch; membership not checked (UNVERIFIED); else
    suspect — nothing vouches for the item."""
    if any(r in SUSPECT_REASONS for r in reasons):
        return Verdict.COUNTERFEIT_SUSPECT
    if Reason.REGISTRATION_PENDING in reasons:
        return Verdict.PENDING
    if status == Status.STOLEN:
        return Verdict.STOLEN
    if status == Status.RECALLED:
        return Verdict.RECALLED
    if status == Status.DECOMMISSIONED:
        return Verdict.DECOMMISSIONED
    if Reason.SIGNATURE_VALID in reasons:
        return Verdict.GENUINE
    if Reason.SERIAL_IN_BATCH in reasons:
        return Verdict.GENUINE_UNSIGNED
    if Reason.MEMBERSHIP_NOT_CHECKED in reasons:
        return Verdict.UNVERIFIED
    return Verdict.COUNTERFEIT_SUSPECT


#: Verdicts a clone finding turns into COUNTERFEIT_SUSPECT: every verdict that would let the
#: item go (or leave it merely unverified). Status verdicts already hold the item.
_CLONE_OVERRIDES = frozenset(
    {Verdict.GENUINE, Verdict.GENUINE_UNSIGNED, Verdict.GENUINE_DIVERTED, Verdict.UNVERIFIED}
)

#: Clone findings by how plainly they tell the officer why, most telling first.
_CLONE_ORDER = (
    "CLONE_IMPOSSIBLE_TRAVEL",
    "CLONE_AFTER_DESTRUCTION",
    "CLONE_AFTER_DECOMMISSION",
    "SEQUENCE_BEFORE_ORIGIN",
    "SEQUENCE_ROUTE_ORDER",
    "CLONE_TOO_MANY_PLACES",
)
_DIVERSION_ORDER = (
    "DIVERSION_MARKET",
    "DIVERSION_CONSIGNEE",
    "DIVERSION_ROUTE",
    "DIVERSION_RETURN",
)


@dataclass(frozen=True, slots=True)
class Place:
    """A UN/LOCODE and, when the location registry knows it, its name."""

    locode: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.locode} ({self.name})" if self.name else self.locode


@dataclass(frozen=True, slots=True)
class FindingFacts:
    """What the engine needs of one detector finding to weigh it and say why: its class and
    reason code (`detector.rules`), where and when this scan was, the other sighting that
    contradicts it (clone rules comparing two sightings) and the markets the item was made
    for (diversion rules)."""

    alert_class: str
    reason: str
    here: Place
    at: float
    other: Place | None = None
    other_at: float | None = None
    markets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pending:
    """A batch enrolled at this gateway that its index does not show yet: the block of its
    registration (None while the write is queued, not yet on chain) and the index's block."""

    registered_block: int | None
    index_block: int


def with_findings(verdict: Verdict, findings: Iterable[FindingFacts]) -> Verdict:
    """The verdict once the scan's findings are weighed.

    A clone finding holds the item: any verdict that would clear it (or leave it unverified)
    becomes COUNTERFEIT_SUSPECT — the verdict every client already holds an item for; the
    reason CLONE_SUSPECT and the summary say it is a copy. A diversion finding keeps the goods
    genuine but not plainly so: GENUINE becomes GENUINE_DIVERTED (GENUINE_UNSIGNED keeps its
    verdict and its summary says diverted). Status and suspect verdicts stand."""
    classes = {f.alert_class for f in findings}
    if "clone" in classes and verdict in _CLONE_OVERRIDES:
        return Verdict.COUNTERFEIT_SUSPECT
    if "diversion" in classes and verdict == Verdict.GENUINE:
        return Verdict.GENUINE_DIVERTED
    return verdict


def _pick(findings: Sequence[FindingFacts], order: tuple[str, ...]) -> FindingFacts | None:
    ranked = sorted((f for f in findings if f.reason in order), key=lambda f: order.index(f.reason))
    return ranked[0] if ranked else None


def _span(seconds: float) -> str:
    """A duration in the largest whole unit people say: "1 second", "3 hours", "44 days"."""
    seconds = abs(seconds)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = round(seconds)
    return f"{n} second{'s' if n != 1 else ''}"


def _clone_sentence(f: FindingFacts) -> str:
    if f.other is not None and f.other_at is not None:
        if f.other_at <= f.at:
            seen = f"this code was already scanned at {f.other} {_span(f.at - f.other_at)} ago"
        else:
            seen = f"this code was also scanned at {f.other} {_span(f.other_at - f.at)} later"
        if f.reason == "CLONE_IMPOSSIBLE_TRAVEL":
            why = "the same item cannot be in both places"
        else:
            why = "the item cannot have gone back along its route unseen"
        return f"Potential copy: {seen}; {why}. Hold the item."
    why = {
        "CLONE_AFTER_DESTRUCTION": "this item was destroyed, yet its code is scanned again",
        "CLONE_AFTER_DECOMMISSION": "this pack was decommissioned, yet its code is scanned again",
        "CLONE_TOO_MANY_PLACES": "this code was scanned at more places than its route allows",
    }.get(f.reason, "the detector found this code where the item cannot be")
    return f"Potential copy: {why} (scanned at {f.here}). Hold the item."


def _markets(markets: tuple[str, ...]) -> str:
    if not markets:
        return "another market"
    plural = "s" if len(markets) > 1 else ""
    return f"the {', '.join(markets)} market{plural}"


def _diversion_clause(f: FindingFacts) -> str:
    how = {
        "DIVERSION_ROUTE": ", off its declared route",
        "DIVERSION_CONSIGNEE": ", held by a consignee it was not released to",
        "DIVERSION_RETURN": ", back in its origin country although its route allows no returns",
    }.get(f.reason, "")
    return f"made for {_markets(f.markets)}, scanned at {f.here}{how}"


def summary(
    verdict: Verdict,
    *,
    offline: bool = False,
    findings: Sequence[FindingFacts] = (),
    pending: Pending | None = None,
) -> str:
    """The sentence shown with `verdict` (as `with_findings` made it): for a copy, where and
    when the code was seen before; for diverted goods, the market they were made for; for a
    pending registration, the blocks. Offline, a genuine verdict says membership was not
    checked. Built here only, from structured facts, so every path says it alike (and a
    translation later has one place to go)."""
    if verdict == Verdict.COUNTERFEIT_SUSPECT:
        clone = _pick(findings, _CLONE_ORDER)
        if clone is not None:
            return _clone_sentence(clone)
    diverted = _pick(findings, _DIVERSION_ORDER)
    offline_note = " (offline: membership in the batch not checked)" if offline else ""
    if verdict == Verdict.GENUINE_DIVERTED:
        if diverted is None:
            return SUMMARIES[verdict]
        return (
            f"Genuine, diverted: {_diversion_clause(diverted)}{offline_note}. Gray-market goods: "
            "check the recordation before release."
        )
    if verdict == Verdict.GENUINE_UNSIGNED and diverted is not None:
        return (
            f"Registered serial, diverted: {_diversion_clause(diverted)}. No signature was "
            "presented, so a copied code cannot be ruled out. Gray-market goods: check the "
            "recordation before release."
        )
    if verdict == Verdict.PENDING and pending is not None:
        if pending.registered_block is None:
            return (
                "Registration pending: the batch is enrolled at this gateway, its registration "
                "is not yet on chain. Scan again in a few seconds."
            )
        return (
            f"Registration pending: registered at block {pending.registered_block}; this "
            f"gateway's index is at block {pending.index_block} and catching up. Scan again in "
            "a few seconds."
        )
    if offline and verdict == Verdict.GENUINE:
        return _OFFLINE_GENUINE
    return SUMMARIES[verdict]
