"""EPCIS 2.0 custody events: validation, identifiers, parsing and export (no web, no chain).

GS1 EPCIS 2.0 is how manufacturers, carriers and importers tell each other what happened to
which things, when and where. This package reads their JSON/JSON-LD documents against GS1's
official schema (bundled in `epcis/data/`) into typed `CustodyEvent`s, and writes custody
histories back out as documents that validate against the same schema. See docs/epcis.md.
"""

from epcis.events import (
    BizTransaction,
    CustodyEvent,
    ErrorDeclaration,
    Party,
    Quantity,
    containers_of,
    derived_event_id,
    items_of,
    parse_document,
    parse_event,
)
from epcis.export import document_of, locode_uri, merge_contexts, object_event, to_document
from epcis.identifiers import Identifier, IdentifierKind, parse_identifier, to_epc_urn
from epcis.schema import problems, validate

__all__ = [
    "BizTransaction",
    "CustodyEvent",
    "ErrorDeclaration",
    "Identifier",
    "IdentifierKind",
    "Party",
    "Quantity",
    "containers_of",
    "derived_event_id",
    "document_of",
    "items_of",
    "locode_uri",
    "merge_contexts",
    "object_event",
    "parse_document",
    "parse_event",
    "parse_identifier",
    "problems",
    "to_document",
    "to_epc_urn",
    "validate",
]
