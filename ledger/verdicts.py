"""The judgement rules the gateway (api/verification.py) and the offline verifier
(scanner/offline.py) share, as reason-code strings.

Each side has its own `Reason` enum (the offline one lacks what needs the batch's tree, such as
SERIAL_UNKNOWN, and adds MEMBERSHIP_NOT_CHECKED and BUNDLE_STALE), but which reasons make an
item a potential suspect and which status gives which reason must be one rule: they are kept
here once and each side builds its enum-typed tables from them.
"""

from __future__ import annotations

from ledger.models import Status

#: Reasons that make an item a potential suspect (verdict COUNTERFEIT_SUSPECT).
SUSPECT_REASONS = frozenset(
    {
        "GTIN_UNKNOWN",
        "BATCH_UNKNOWN",
        "SERIAL_UNKNOWN",
        "SIGNATURE_INVALID",
        "SIGNER_UNKNOWN",
        "SIGNER_FOREIGN",
        "SIGNER_REVOKED",
        "ITEM_DESTROYED",
    }
)

#: (status, set on the whole batch?) → the reason it gives.
STATUS_REASONS: dict[tuple[Status, bool], str] = {
    (Status.RECALLED, True): "BATCH_RECALLED",
    (Status.RECALLED, False): "ITEM_RECALLED",
    (Status.STOLEN, True): "ITEM_STOLEN",
    (Status.STOLEN, False): "ITEM_STOLEN",
    (Status.DECOMMISSIONED, True): "ITEM_DECOMMISSIONED",
    (Status.DECOMMISSIONED, False): "ITEM_DECOMMISSIONED",
    (Status.DESTROYED, True): "ITEM_DESTROYED",
    (Status.DESTROYED, False): "ITEM_DESTROYED",
}
