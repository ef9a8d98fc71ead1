"""Classifying decoded text: tags, GS1 element strings (every accepted spelling), foreign."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.digital_link import DigitalLink
from ledger.errors import InvalidInput
from ledger.gs1 import CSET82, gtin_check_digit
from scanner.payload import (
    GS,
    classify,
    encode_element_string,
    format_hri,
    parse_element_string,
    typed,
)

GTIN = "09506000134352"
PACK = [("01", GTIN), ("17", "281231"), ("10", "L1/2"), ("21", "SN0001")]


@st.composite
def gtins(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=13, max_size=13))
    return body + str(gtin_check_digit(body))


def cset82(exclude: str = "") -> st.SearchStrategy[str]:
    return st.text(sorted(CSET82 - set(exclude)), min_size=1, max_size=20)


@st.composite
def element_lists(draw: st.DrawFn, exclude: str = "") -> list[tuple[str, str]]:
    fields = [
        ("01", draw(gtins())),
        ("17", draw(st.text("0123456789", min_size=6, max_size=6))),
        ("10", draw(cset82(exclude))),
        ("21", draw(cset82(exclude))),
    ]
    keep = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4, unique=True))
    return draw(st.permutations(keep))


@given(element_lists())
def test_raw_element_string_round_trips(pairs: list[tuple[str, str]]) -> None:
    raw = encode_element_string(pairs)
    assert parse_element_string(raw) == pairs
    for prefix in ("]d2", "]C1", "]Q3", GS):
        assert parse_element_string(prefix + raw) == pairs


@given(element_lists(exclude="("))
def test_human_readable_form_round_trips(pairs: list[tuple[str, str]]) -> None:
    assert parse_element_string(format_hri(pairs)) == pairs


@given(element_lists())
def test_escaped_gs_is_read_as_gs(pairs: list[tuple[str, str]]) -> None:
    escaped = encode_element_string(pairs).replace(GS, "<GS>")
    assert parse_element_string(escaped) == pairs


def test_fixed_length_fields_need_no_separator() -> None:
    raw = "01" + GTIN + "17281231" + "10L1/2" + GS + "21SN0001"
    assert encode_element_string(PACK) == raw
    assert parse_element_string(raw) == PACK
    # A separator after a fixed-length field (some printers add one) is tolerated.
    assert parse_element_string("01" + GTIN + GS + "17281231" + "10L1/2" + GS + "21SN0001") == PACK


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("01" + GTIN[:10], r"\(01\) needs 14"),
        ("0509506000134352", "known GS1 application identifier"),
        ("(01)" + GTIN + "(17)2812", r"\(17\) needs 6 digits"),
        ("0109506000134352" + "21" + "X" * 21, "at most 20"),
        ("01" + GTIN + "21" + GS, "no value"),
        ("", "empty"),
    ],
)
def test_malformed_element_strings_are_named(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_element_string(text)


def test_gs1_datamatrix_text_is_checked_by_fields() -> None:
    p = classify(encode_element_string(PACK), "]d2")
    assert p.kind == "gs1"
    assert (p.gtin, p.lot, p.serial, p.expiry) == (GTIN, "L1/2", "SN0001", "281231")
    assert p.request == {"gtin": GTIN, "serial": "SN0001", "lot": "L1/2"}
    assert classify("]d2" + encode_element_string(PACK)).kind == "gs1"
    assert classify(format_hri(PACK)).kind == "gs1"
    # GS1 data read without a symbology identifier still classifies by its shape.
    assert classify(encode_element_string(PACK)).kind == "gs1"


def test_signed_and_unsigned_tags() -> None:
    signed = DigitalLink(GTIN, "L1", "SN1", os.urandom(65)).to_uri()
    p = classify(signed, "]Q1")
    assert (p.kind, p.signed, p.request) == ("tag", True, {"tag": signed})
    unsigned = DigitalLink(GTIN, "L1", "SN1").to_uri()
    assert (classify(unsigned).kind, classify(unsigned).signed) == ("tag", False)


def test_digital_link_without_lot_is_checked_by_fields() -> None:
    p = classify(f"https://id.example.com/01/{GTIN}/21/ABC")
    assert p.kind == "gs1" and p.request == {"gtin": GTIN, "serial": "ABC"}


@pytest.mark.parametrize(
    ("text", "kind", "match"),
    [
        ("https://example.com/promo?id=1", "foreign", "web address"),
        ("5901234123457", "foreign", "EAN-13"),
        ("hello world", "foreign", "not a GS1 code"),
        ("0109506000134352", "foreign", "without a serial"),
        (f"https://id.example.com/01/{GTIN}/10/L1/21/SN1?sig=abc", "invalid", "sig"),
        ("(01)09506000134353(21)X", "invalid", "check digit"),
        ("]d2" + "0109506000", "invalid", "cannot be read"),
    ],
)
def test_codes_that_cannot_be_checked_say_why(text: str, kind: str, match: str) -> None:
    p = classify(text)
    assert p.kind == kind
    assert p.request is None
    assert match in p.message


def test_typed_entry() -> None:
    p = typed("9506000134352", "SN1", "L1")
    assert p.kind == "typed" and p.request == {"gtin": GTIN, "serial": "SN1", "lot": "L1"}
    bad = typed("9506000134353", "SN1")
    assert bad.kind == "invalid" and "check digit" in bad.message
