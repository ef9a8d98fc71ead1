from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epcis.identifiers import IdentifierKind, parse_identifier, to_epc_urn
from ledger.errors import InvalidEpcIdentifier, InvalidInput
from ledger.gs1 import CSET82, gtin_check_digit


def test_sgtin_urn_and_digital_link_are_the_same_item() -> None:
    urn = parse_identifier("urn:epc:id:sgtin:0614141.107346.2017")
    assert urn.kind is IdentifierKind.SGTIN
    # indicator 1 + prefix 0614141 + item ref 07346 + check digit 4
    assert (urn.gtin, urn.serial, urn.company_prefix_length) == ("10614141073464", "2017", 7)
    assert urn.digital_link == "https://id.gs1.org/01/10614141073464/21/2017"
    link = parse_identifier("https://example.com/anything/01/10614141073464/21/2017?x=1")
    assert link.key == urn.key and link.item == urn.item == ("10614141073464", "2017")
    assert to_epc_urn(link, company_prefix_length=7) == urn.uri


def test_other_gs1_keys() -> None:
    sscc = parse_identifier("urn:epc:id:sscc:0614141.1234567890")
    assert (sscc.kind, sscc.sscc) == (IdentifierKind.SSCC, "106141412345678908")
    assert parse_identifier("https://id.gs1.org/00/106141412345678908").key == sscc.key
    sgln = parse_identifier("urn:epc:id:sgln:0614141.07346.1234")
    assert (sgln.gln, sgln.extension) == ("0614141073467", "1234")
    assert sgln.digital_link == "https://id.gs1.org/414/0614141073467/254/1234"
    bare = parse_identifier("urn:epc:id:sgln:0614141.00777.0")
    assert (bare.gln, bare.extension, bare.digital_link) == (
        "0614141007776",
        None,
        "https://id.gs1.org/414/0614141007776",
    )
    assert to_epc_urn(parse_identifier(bare.digital_link or ""), 7) == bare.uri
    lgtin = parse_identifier("urn:epc:class:lgtin:4012345.012345.998877")
    assert (lgtin.kind, lgtin.gtin, lgtin.lot) == (IdentifierKind.LGTIN, "04012345123456", "998877")
    assert parse_identifier("https://id.gs1.org/01/04012345123456/10/998877").key == lgtin.key
    pattern = parse_identifier("urn:epc:idpat:sgtin:4012345.098765.*")
    assert (pattern.kind, pattern.gtin) == (IdentifierKind.GTIN, "04012345987652")
    assert parse_identifier("https://id.gs1.org/01/04012345987652").key == pattern.key
    prefixed = parse_identifier("https://resolver.example/00/x/01/10614141073464/21/2017/")
    assert prefixed.item == ("10614141073464", "2017")
    with_lot = parse_identifier("https://id.gs1.org/01/04012345123456/10/L1/21/S%2F1")
    assert (with_lot.kind, with_lot.lot, with_lot.serial) == (IdentifierKind.SGTIN, "L1", "S/1")


@pytest.mark.parametrize(
    "uri",
    [
        "urn:epc:id:giai:4000001.111",
        "urn:epc:id:pgln:9520001.11111",
        "urn:epc:idpat:sgtin:4012345.*.*",
        "http://transaction.acme.com/po/12345678",
        "https://id.gs1.org/8004/4000001111",
        "https://id.gs1.org/01/04012345987652/22/V1",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ],
)
def test_unsupported_identifiers_are_kept_as_other(uri: str) -> None:
    parsed = parse_identifier(uri)
    assert (parsed.kind, parsed.key, parsed.gtin, parsed.item) == (
        IdentifierKind.OTHER,
        uri,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("urn:epc:id:sgtin:0614141.10734.2017", "12 digits together; expected 13"),
        ("urn:epc:id:sgtin:0614141.107346", "3 non-empty dot-separated fields"),
        ("urn:epc:id:sgtin:0614141.107346.a b", "outside GS1 CSET 82"),
        ("urn:epc:id:sgtin:0614141.107346.a%zz", "'%' not followed by two hex digits"),
        ("urn:epc:id:sgtin:06141.1073467.1", "has 5 digits"),
        ("urn:epc:id:sscc:0614141.123456789", "16 digits together; expected 17"),
        ("urn:epc:id:sgln:0614141.0734.0", "11 digits together; expected 12"),
        ("https://id.gs1.org/01/70614141123452/21/2017", "the digits before it give 1"),
        ("https://id.gs1.org/00/106141412345678909", "the digits before it give 8"),
        ("https://id.gs1.org/414/061414107346/254/1", "must be 13 digits"),
        ("https://id.gs1.org/01/10614141073464/21/" + "x" * 21, "at most 20"),
    ],
)
def test_malformed_gs1_identifiers_raise_naming_them(uri: str, why: str) -> None:
    with pytest.raises(InvalidEpcIdentifier) as caught:
        parse_identifier(uri)
    assert isinstance(caught.value, InvalidInput)
    assert repr(uri) in str(caught.value) and why in str(caught.value)


_prefix_lengths = st.integers(min_value=6, max_value=12)
_cset82_text = st.text(alphabet=sorted(CSET82), min_size=1, max_size=20)


@given(_prefix_lengths, st.text("0123456789", min_size=13, max_size=13), _cset82_text)
def test_sgtin_round_trips(length: int, digits: str, serial: str) -> None:
    prefix, item_ref = digits[1 : 1 + length], digits[0] + digits[1 + length :]
    urn = to_epc_urn(parse_identifier(f"urn:epc:id:sgtin:{prefix}.{item_ref}.x"), length)
    assert urn == f"urn:epc:id:sgtin:{prefix}.{item_ref}.x"
    gtin = digits + str(gtin_check_digit(digits))
    from_urn = parse_identifier(
        to_epc_urn(parse_identifier(f"https://id.gs1.org/01/{gtin}/21/x"), length).replace(
            ".x", "." + _escape(serial)
        )
    )
    assert from_urn.item == (gtin, serial)
    assert to_epc_urn(from_urn) == from_urn.uri
    from_link = parse_identifier(from_urn.digital_link or "")
    assert from_link.item == (gtin, serial)
    assert to_epc_urn(from_link, length) == from_urn.uri


def _escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in '"%&/<>?' else c for c in value)


@given(_prefix_lengths, st.text("0123456789", min_size=17, max_size=17))
def test_sscc_round_trips(length: int, digits: str) -> None:
    sscc = digits + str(gtin_check_digit(digits))
    link = parse_identifier(f"https://id.gs1.org/00/{sscc}")
    urn = to_epc_urn(link, length)
    back = parse_identifier(urn)
    assert (back.kind, back.sscc, back.digital_link) == (IdentifierKind.SSCC, sscc, link.uri)


@given(
    _prefix_lengths,
    st.text("0123456789", min_size=12, max_size=12),
    st.one_of(st.none(), _cset82_text),
)
def test_sgln_round_trips(length: int, digits: str, extension: str | None) -> None:
    gln = digits + str(gtin_check_digit(digits))
    if extension == "0":
        extension = None  # extension 0 is how a URN says "no extension"
    link = parse_identifier(
        f"https://id.gs1.org/414/{gln}" + (f"/254/{_escape(extension)}" if extension else "")
    )
    back = parse_identifier(to_epc_urn(link, length))
    assert (back.gln, back.extension, back.digital_link) == (gln, extension, link.digital_link)


@given(_prefix_lengths, st.text("0123456789", min_size=13, max_size=13), _cset82_text)
def test_lgtin_round_trips(length: int, digits: str, lot: str) -> None:
    gtin = digits + str(gtin_check_digit(digits))
    link = parse_identifier(f"https://id.gs1.org/01/{gtin}/10/{_escape(lot)}")
    back = parse_identifier(to_epc_urn(link, length))
    assert (back.kind, back.gtin, back.lot, back.key) == (IdentifierKind.LGTIN, gtin, lot, link.key)
