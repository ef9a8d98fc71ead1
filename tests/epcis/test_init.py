from __future__ import annotations

import subprocess
import sys

import epcis


def test_public_names() -> None:
    assert set(epcis.__all__) == {
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
    }
    assert all(hasattr(epcis, name) for name in epcis.__all__)


def test_domain_package_imports_neither_web_nor_chain() -> None:
    code = (
        "import sys, epcis, epcis.schema, epcis.events, epcis.export, epcis.identifiers\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'web3', 'starlette'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
