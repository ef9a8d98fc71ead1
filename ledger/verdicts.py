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
- `summary`, the sentence shown with a verdict;
- `FINDING_REASONS` / `finding_reasons`, the reasons detector findings add to a scan's.

Core module: imports only `ledger` core modules (no web3, no web framework, no detector).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from enum import StrEnum
from typing import Protocol

from ledger.models import Status


class Verdict(StrEnum):
    GENUINE = "GENUINE"
    #: The serial is proven in its batch but no signature was presented. Only a judge holding
    #: the batch's tree (the gateway, `borderledger check --batch-dir`) can give it.
    GENUINE_UNSIGNED = "GENUINE_UNSIGNED"
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

#: Detector alert class (`detector.rules.AlertClass` value) → the reason its finding adds. A
#: finding never changes the verdict: it is about the item's movements, not what the ledger
#: vouches for. Status findings add nothing (the ITEM_* reasons already say it).
FINDING_REASONS: dict[str, Reason] = {
    "clone": Reason.CLONE_SUSPECT,
    "diversion": Reason.DIVERSION_SUSPECT,
}

SUMMARIES: dict[Verdict, str] = {
    Verdict.GENUINE: "Genuine: signed by the rights holder and registered on chain.",
    Verdict.GENUINE_UNSIGNED: "Registered serial; no signature was presented, so a copied code "
    "cannot be ruled out.",
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


def signer_reason(key: SignerKey | None, batch_holder: str, registered_at: int) -> Reason:
    """SIGNATURE_VALID when `key` may sign for a batch of `batch_holder` registered at
    `registered_at`, else why not (None: the key was never registered).

    The registry's `isSignerValidFor`: a revoked key still vouches for batches registered
    while it was active, so revoking a key does not turn tags already shipped into suspects."""
    if key is None:
        return Reason.SIGNER_UNKNOWN
    if key.holder != batch_holder:
        return Reason.SIGNER_FOREIGN
    if key.revoked_at and not (key.added_at <= registered_at < key.revoked_at):
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
    """The verdict, first match wins: a suspect reason; stolen, recalled, decommissioned; a
    valid signature; a serial proven in its batch; membership not checked (UNVERIFIED); else
    suspect — nothing vouches for the item."""
    if any(r in SUSPECT_REASONS for r in reasons):
        return Verdict.COUNTERFEIT_SUSPECT
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


def summary(verdict: Verdict, *, offline: bool = False) -> str:
    """The sentence shown with `verdict`; offline, GENUINE says membership was not checked."""
    if offline and verdict == Verdict.GENUINE:
        return _OFFLINE_GENUINE
    return SUMMARIES[verdict]
