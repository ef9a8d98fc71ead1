"""GS1 Digital Link tag URIs: round trips, normalisation and every way a URI can be malformed."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.digital_link import (
    DEFAULT_HOST,
    DigitalLink,
    decode_signature,
    encode_signature,
    parse_digital_link,
)
from ledger.errors import InvalidDigitalLink, InvalidInput

SPEC_CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
GTIN = "09506000134352"  # GS1 example GTIN-14
SIG = bytes(range(1, 66))  # 65 bytes
SIG_B64 = base64.urlsafe_b64encode(SIG).decode().rstrip("=")
BASE = f"https://id.example.com/01/{GTIN}/10/LOT1/21/SN1"


def spec_check_digit(body: str) -> int:
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - weighted % 10) % 10


gtins14 = st.text("0123456789", min_size=13, max_size=13).map(
    lambda body: body + str(spec_check_digit(body))
)
cset82_values = st.text(alphabet=SPEC_CSET82, min_size=1, max_size=20)
signatures = st.none() | st.binary(min_size=65, max_size=65)
hosts = st.sampled_from(
    [DEFAULT_HOST, "id.gs1.org", "example.com:8443", "127.0.0.1", "resolver.acme.example"]
)
links = st.builds(
    DigitalLink, gtin=gtins14, lot=cset82_values, serial=cset82_values, signature=signatures
)


# --- round trips --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(links)
def test_parse_inverts_to_uri(link: DigitalLink) -> None:
    uri = link.to_uri()
    assert parse_digital_link(uri) == link


@settings(max_examples=100, deadline=None)
@given(links, hosts)
def test_round_trip_keeps_any_host(link: DigitalLink, host: str) -> None:
    hosted = DigitalLink(link.gtin, link.lot, link.serial, link.signature, host)
    parsed = parse_digital_link(hosted.to_uri())
    assert parsed == hosted
    assert parsed.host == host


@settings(max_examples=200, deadline=None)
@given(links)
def test_uri_path_is_exactly_six_segments_with_encoded_values(link: DigitalLink) -> None:
    # A '/', '?', '%' or '&' in a value must never leak into the URI's structure.
    parts = urlsplit(link.to_uri())
    assert parts.scheme == "https"
    assert parts.fragment == ""
    segments = parts.path.split("/")[1:]
    assert len(segments) == 6
    assert segments[0::2] == ["01", "10", "21"]
    assert segments[1] == link.gtin
    assert unquote(segments[3]) == link.lot
    assert unquote(segments[5]) == link.serial
    if link.signature is None:
        assert parts.query == ""
    else:
        assert parts.query.startswith("sig=")


def test_tricky_cset82_characters_round_trip() -> None:
    for value in ["a/b", "50%", "x?y=1", "a&b", "%2F", "%25", "../..", "+", "'\"<>", "01", "21"]:
        link = DigitalLink(GTIN, value, value, SIG)
        assert parse_digital_link(link.to_uri()) == link


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=65, max_size=65))
def test_signature_encoding_is_unpadded_base64url(signature: bytes) -> None:
    text = encode_signature(signature)
    assert "=" not in text
    assert len(text) == 87  # ceil(65 * 8 / 6)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert base64.urlsafe_b64decode(text + "=") == signature
    assert decode_signature(text) == signature


# --- normalisation and leniency -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gtin", "gtin14"),
    [
        ("4006381333931", "04006381333931"),
        ("036000291452", "00036000291452"),
        ("96385074", "00000096385074"),
    ],
)
def test_short_gtins_in_uri_normalize_to_14_digits(gtin: str, gtin14: str) -> None:
    parsed = parse_digital_link(f"https://id.example.com/01/{gtin}/10/L1/21/S1")
    assert parsed.gtin == gtin14


def test_unsigned_link_has_no_signature() -> None:
    parsed = parse_digital_link(BASE)
    assert parsed == DigitalLink(GTIN, "LOT1", "SN1", None, "id.example.com")


def test_unknown_query_parameters_are_ignored() -> None:
    parsed = parse_digital_link(f"{BASE}?utm_source=label&sig={SIG_B64}&linkType=gs1:pip&x=")
    assert parsed.signature == SIG
    assert (parsed.gtin, parsed.lot, parsed.serial) == (GTIN, "LOT1", "SN1")
    assert parse_digital_link(f"{BASE}?linkType=all").signature is None


@pytest.mark.parametrize(
    "prefix",
    ["https://id.gs1.org", "http://acme.example", "https://acme.example:8443/gs1", "HTTPS://X.Y"],
)
def test_host_and_path_prefix_are_ignored_for_identity(prefix: str) -> None:
    parsed = parse_digital_link(f"{prefix}/01/{GTIN}/10/LOT1/21/SN1?sig={SIG_B64}")
    assert (parsed.gtin, parsed.lot, parsed.serial, parsed.signature) == (GTIN, "LOT1", "SN1", SIG)


def test_percent_escapes_are_decoded() -> None:
    parsed = parse_digital_link(f"https://h.example/01/{GTIN}/10/A%2FB%25/21/%3F%26x")
    assert parsed.lot == "A/B%"
    assert parsed.serial == "?&x"


# --- malformed URIs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (f"id.example.com/01/{GTIN}/10/L/21/S", "not an http"),
        (f"//id.example.com/01/{GTIN}/10/L/21/S", "not an http"),
        (f"ftp://id.example.com/01/{GTIN}/10/L/21/S", "not an http"),
        (f"https:///01/{GTIN}/10/L/21/S", "not an http"),
        (f"urn:epc:id:sgtin/01/{GTIN}/10/L/21/S", "not an http"),
        ("https://id.example.com/10/L/21/S", "no GTIN"),
        ("https://id.example.com/", "no GTIN"),
        (f"https://id.example.com/01/{GTIN}/21/S", "must end in"),
        (f"https://id.example.com/01/{GTIN}/10/L", "must end in"),
        (f"https://id.example.com/01/{GTIN}", "must end in"),
        (f"https://id.example.com/01/{GTIN}/21/S/10/L", "must end in"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/S/extra", "must end in"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/S/", "must end in"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/S/22/X", "must end in"),
        (f"https://id.example.com/01/{GTIN}/11/L/21/S", "must end in"),
        ("https://id.example.com/01/09506000134353/10/L/21/S", "check digit"),
        ("https://id.example.com/01/0950600013435A/10/L/21/S", "only digits"),
        ("https://id.example.com/01/123456789/10/L/21/S", "9 digits"),
        (f"https://id.example.com/01/{GTIN}/10//21/S", "lot must not be empty"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/", "serial must not be empty"),
        (f"https://id.example.com/01/{GTIN}/10/{'L' * 21}/21/S", "at most 20"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/{'S' * 21}", "at most 20"),
        (f"https://id.example.com/01/{GTIN}/10/L%201/21/S", "CSET 82"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/S%23", "CSET 82"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/%C3%A9", "CSET 82"),
        (f"https://id.example.com/01/{GTIN}/10/L%FF/21/S", "not UTF-8"),
        (f"https://id.example.com/01/{GTIN}/10/L/21/S%C3", "not UTF-8"),
        (f"{BASE}?sig=", "not base64url"),
        (f"{BASE}?sig={SIG_B64[:-1]}$", "not base64url"),
        (f"{BASE}?sig={SIG_B64}=", "not base64url"),
        (f"{BASE}?sig={base64.b64encode(bytes([0xFB] * 65)).decode()}", "not base64url"),
        (f"{BASE}?sig=A", "not valid base64url"),
        (f"{BASE}?sig={encode_signature(bytes(64))}", "decodes to 64 bytes"),
        (f"{BASE}?sig={encode_signature(bytes(66))}", "decodes to 66 bytes"),
        (f"{BASE}?sig={SIG_B64}&sig={SIG_B64}", "2 sig attributes"),
        (f"{BASE}?{'x' * 2100}", "at most 2048"),
    ],
)
def test_malformed_uris_raise_naming_the_problem(uri: str, problem: str) -> None:
    with pytest.raises(InvalidDigitalLink) as info:
        parse_digital_link(uri)
    assert problem in str(info.value)
    assert isinstance(info.value, InvalidInput)
    assert isinstance(info.value, ValueError)


def test_messages_quote_the_offending_uri() -> None:
    uri = f"ftp://id.example.com/01/{GTIN}/10/L/21/S"
    with pytest.raises(InvalidDigitalLink) as info:
        parse_digital_link(uri)
    assert repr(uri) in str(info.value)
    bad_gtin = "https://id.example.com/01/09506000134353/10/L/21/S"
    with pytest.raises(InvalidDigitalLink) as info:
        parse_digital_link(bad_gtin)
    assert "09506000134353" in str(info.value)


def test_uri_length_limit_is_2048_characters() -> None:
    padding = "x" * (2048 - len(BASE) - 3)
    at_limit = f"{BASE}?p={padding}"
    assert len(at_limit) == 2048
    assert parse_digital_link(at_limit).serial == "SN1"
    with pytest.raises(InvalidDigitalLink, match="2049 characters"):
        parse_digital_link(at_limit + "x")


def test_invalid_percent_escapes_are_refused() -> None:
    # RFC 3986 section 2.1: '%' must be followed by two hex digits. The canonical URI for
    # the lot '50%' is '/10/50%25'; '/10/50%' is not a URI at all.
    for segment in ["%ZZ", "50%", "%4"]:
        with pytest.raises(InvalidDigitalLink):
            parse_digital_link(f"https://id.example.com/01/{GTIN}/10/{segment}/21/S")


@pytest.mark.parametrize("text", ["", "A", "AB=", "AB+/", "é", SIG_B64 + "AAAA"])
def test_decode_signature_refuses_bad_text(text: str) -> None:
    with pytest.raises(InvalidDigitalLink):
        decode_signature(text)


def test_non_canonical_signature_spelling_is_refused() -> None:
    """65 bytes leave 4 spare bits in the last base64url character: only the spelling with
    those bits zero is accepted, so one signature has one URI."""
    signature = bytes(range(65))
    link = DigitalLink("09506000134352", "L1", "S1", signature)
    uri = link.to_uri()
    assert parse_digital_link(uri).signature == signature
    last = uri[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) + 1]
    with pytest.raises(InvalidDigitalLink, match="canonical"):
        parse_digital_link(uri[:-1] + sibling)
