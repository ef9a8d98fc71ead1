"""The case fields disclosure rules talk about (kept apart so profiles can check names)."""

from __future__ import annotations

#: Every viewer of a case reads these: where the case stands, never what is in it.
CORE = (
    "id",
    "profile",
    "jurisdiction",
    "state",
    "stage",
    "outcome",
    "perishable",
    "presented_at",
    "opened_at",
    "clocks",
    "history",
    "flags",
)
#: What a profile's stages and viewers can reveal (an officer of the case's agency reads all).
FIELDS = (
    "reference",
    "date_of_import",
    "port",
    "description",
    "quantity",
    "origin",
    "mode",
    "hs_code",
    "lines",
    #: the scanned items (GTIN, serial, lot, verdict, port, time): serials and lots mark the
    #: goods as the identifying marks do, so profiles reveal them with those
    "items",
    "msrp",
    "images_redacted",
    "images_unredacted",
    "identifying_marks",
    "sample",
    "limited_use_notice",
    "manufacturer",
    "exporter",
    "importer",
    "declarant",
    "consignee",
    "rights_holders",
    "custody",
    "notes",
    "timeline",
    "documents",
)
