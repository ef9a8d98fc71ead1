"""What an officer scanned, validated once for every judge (gateway, offline, device sync).

A malformed tag or a wrong check digit is refused here as `InvalidInput` — a data error, not a
verdict — before anything is judged or recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.digital_link import parse_digital_link
from ledger.gs1 import normalize_gtin, validate_lot, validate_serial


@dataclass(frozen=True)
class Scanned:
    """A tag, or a GTIN + serial (and lot) typed from a label."""

    gtin: str
    serial: str
    lot: str | None
    signature: bytes | None
    kind: str  # "tag" or "typed"

    @classmethod
    def from_tag(cls, uri: str) -> Scanned:
        link = parse_digital_link(uri)
        return cls(link.gtin, link.serial, link.lot, link.signature, "tag")

    @classmethod
    def from_fields(cls, gtin: str, serial: str, lot: str | None = None) -> Scanned:
        return cls(
            normalize_gtin(gtin),
            validate_serial(serial),
            validate_lot(lot) if lot else None,
            None,
            "typed",
        )

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Scanned:
        """From a POST /v1/verify body (`{"tag"}` or `{"gtin", "serial", "lot"?}`), as
        `scanner.payload` builds it."""
        if "tag" in request:
            return cls.from_tag(str(request["tag"]))
        lot = request.get("lot")
        return cls.from_fields(
            str(request["gtin"]), str(request["serial"]), str(lot) if lot else None
        )
