"""GS1 identifiers: GTIN check digits and CSET 82 serial / lot rules.

Expected values come from GS1's own examples and from the GS1 General Specifications (the
mod-10 check digit algorithm and figure 7.11-1 for CSET 82), re-implemented here rather than
taken from `ledger.gs1`.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidGtin, InvalidInput, InvalidLot, InvalidSerial
from ledger.gs1 import (
    CSET82,
    MAX_LOT_LENGTH,
    MAX_SERIAL_LENGTH,
    Sgtin,
    gtin_check_digit,
    normalize_gtin,
    validate_lot,
    validate_serial,
)

#: GS1 General Specifications figure 7.11-1, written out group by group.
SPEC_CSET82 = (
    "!\"%&'()*+,-./"  # 13 punctuation marks
    + "0123456789"
    + ":;<=>?"
    + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    + "_"
    + "abcdefghijklmnopqrstuvwxyz"
)
#: Printable ASCII that is *not* in CSET 82.
ASCII_OUTSIDE_CSET82 = " #$@[\\]^`{|}~"


def spec_check_digit(body: str) -> int:
    """GS1 mod-10: weights 3, 1, 3, ... from the rightmost body digit; round up to 10."""
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - weighted % 10) % 10


# --- GTIN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gtin", "as_gtin14"),
    [
        ("09506000134352", "09506000134352"),  # GS1 GTIN-14 example (check digit 2)
        ("4006381333931", "04006381333931"),  # EAN-13
        ("96385074", "00000096385074"),  # GTIN-8
        ("036000291452", "00036000291452"),  # UPC-A
        ("5901234123457", "05901234123457"),  # EAN-13 from GS1 barcode examples
        ("10614141000415", "10614141000415"),  # GTIN-14 with indicator digit 1
    ],
)
def test_known_gtins_normalize_to_gtin14(gtin: str, as_gtin14: str) -> None:
    assert normalize_gtin(gtin) == as_gtin14
    assert gtin_check_digit(as_gtin14[:13]) == int(gtin[-1])
    assert gtin_check_digit(gtin[:-1]) == int(gtin[-1])


def test_spec_check_digit_agrees_with_known_gtins() -> None:
    # Guards the reference implementation used by the property tests below.
    for gtin in ("09506000134352", "4006381333931", "96385074", "036000291452"):
        assert spec_check_digit(gtin[:-1]) == int(gtin[-1])


@pytest.mark.parametrize(
    ("gtin", "expected_digit"),
    [
        ("09506000134353", "2"),
        ("09506000134350", "2"),
        ("4006381333932", "1"),
        ("96385075", "4"),
        ("036000291450", "2"),
    ],
)
def test_wrong_check_digit_raises_naming_value_and_expected_digit(
    gtin: str, expected_digit: str
) -> None:
    with pytest.raises(InvalidGtin) as info:
        normalize_gtin(gtin)
    message = str(info.value)
    assert repr(gtin) in message
    assert "check digit" in message
    assert message.rstrip().endswith(expected_digit)


@pytest.mark.parametrize(
    "gtin",
    [
        "0950600013435A",
        "O9506000134352",  # letter O instead of zero
        "09506000134352 ",
        " 09506000134352",
        "0950600-134352",
        "+9506000134352",
        "",
        "٠٩٥٠٦٠٠٠١٣٤٣٥٢",  # Arabic-Indic digits: str.isdigit() is True, GS1 says no
        "０９５０６０００１３４３５２",  # fullwidth digits  # noqa: RUF001
        "09506000134352\n",
    ],
)
def test_non_digit_gtins_raise_naming_value(gtin: str) -> None:
    with pytest.raises(InvalidGtin, match="only digits") as info:
        normalize_gtin(gtin)
    assert repr(gtin) in str(info.value)


@pytest.mark.parametrize("length", [1, 7, 9, 10, 11, 15, 18, 20])
def test_wrong_lengths_raise_naming_value_and_length(length: int) -> None:
    body = ("1234567890" * 2)[: length - 1]
    gtin = body + str(spec_check_digit(body))  # a correct check digit: only the length is wrong
    with pytest.raises(InvalidGtin) as info:
        normalize_gtin(gtin)
    message = str(info.value)
    assert repr(gtin) in message
    assert f"{length} digits" in message


@pytest.mark.parametrize("value", [9506000134352, None, b"09506000134352"])
def test_non_string_gtin_raises(value: object) -> None:
    with pytest.raises(InvalidGtin):
        normalize_gtin(value)  # type: ignore[arg-type]


def test_gtin_errors_are_input_errors() -> None:
    with pytest.raises(InvalidInput):
        normalize_gtin("123")
    with pytest.raises(ValueError):
        normalize_gtin("123")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_any_13_digits_plus_check_digit_normalize(body: str) -> None:
    gtin = body + str(spec_check_digit(body))
    assert normalize_gtin(gtin) == gtin
    assert gtin_check_digit(body) == spec_check_digit(body)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=13, max_size=13),
    st.integers(min_value=0, max_value=13),
    st.integers(min_value=1, max_value=9),
)
def test_changing_any_single_digit_breaks_the_gtin(body: str, position: int, delta: int) -> None:
    gtin = body + str(spec_check_digit(body))
    changed_digit = str((int(gtin[position]) + delta) % 10)
    broken = gtin[:position] + changed_digit + gtin[position + 1 :]
    assert broken != gtin
    with pytest.raises(InvalidGtin, match="check digit"):
        normalize_gtin(broken)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([8, 12, 13]).flatmap(
        lambda n: st.text("0123456789", min_size=n - 1, max_size=n - 1)
    )
)
def test_short_gtins_are_zero_padded_to_14(body: str) -> None:
    gtin = body + str(spec_check_digit(body))
    assert normalize_gtin(gtin) == gtin.zfill(14)
    assert len(normalize_gtin(gtin)) == 14


# --- serial and lot (CSET 82) -------------------------------------------------------------------


VALIDATORS = [
    pytest.param(validate_serial, InvalidSerial, "serial", id="serial"),
    pytest.param(validate_lot, InvalidLot, "lot", id="lot"),
]


def test_cset82_is_the_gs1_table() -> None:
    assert len(SPEC_CSET82) == 82
    assert len(set(SPEC_CSET82)) == 82
    assert set(SPEC_CSET82) == CSET82
    assert not set(ASCII_OUTSIDE_CSET82) & CSET82
    printable_ascii = {chr(c) for c in range(0x20, 0x7F)}
    assert printable_ascii == CSET82 | set(ASCII_OUTSIDE_CSET82)


def test_limits_are_twenty_characters() -> None:
    assert MAX_SERIAL_LENGTH == 20
    assert MAX_LOT_LENGTH == 20


@pytest.mark.parametrize(("validate", "error", "what"), VALIDATORS)
def test_twenty_characters_ok_twenty_one_fail(validate, error, what) -> None:
    assert validate("A" * 20) == "A" * 20
    with pytest.raises(error, match="21 characters") as info:
        validate("A" * 21)
    assert what in str(info.value)
    assert repr("A" * 21) in str(info.value)


@pytest.mark.parametrize(("validate", "error", "what"), VALIDATORS)
def test_all_82_characters_are_accepted(validate, error, what) -> None:
    for start in range(0, 82, 20):
        chunk = SPEC_CSET82[start : start + 20]
        assert validate(chunk) == chunk
    for char in SPEC_CSET82:
        assert validate(char) == char


@pytest.mark.parametrize(("validate", "error", "what"), VALIDATORS)
@pytest.mark.parametrize(
    "bad",
    [*ASCII_OUTSIDE_CSET82, "é", "ß", "€", "\u00a0", "\t", "\n", "\x00", "Ａ"],  # noqa: RUF001
)
def test_characters_outside_cset82_fail(validate, error, what, bad: str) -> None:
    value = f"AB{bad}12"
    with pytest.raises(error, match="CSET 82") as info:
        validate(value)
    assert repr(value) in str(info.value)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(("validate", "error", "what"), VALIDATORS)
def test_empty_fails(validate, error, what) -> None:
    with pytest.raises(error, match="empty"):
        validate("")


@pytest.mark.parametrize(("validate", "error", "what"), VALIDATORS)
def test_errors_are_input_errors(validate, error, what) -> None:
    assert issubclass(error, InvalidInput)
    with pytest.raises(ValueError):
        validate("#")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=SPEC_CSET82, min_size=1, max_size=20))
def test_any_cset82_string_up_to_20_is_valid(value: str) -> None:
    assert validate_serial(value) == value
    assert validate_lot(value) == value


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=SPEC_CSET82, max_size=10),
    st.characters(exclude_characters=SPEC_CSET82, exclude_categories=("Cs",)),
    st.text(alphabet=SPEC_CSET82, max_size=9),
)
def test_any_foreign_character_is_refused(prefix: str, bad: str, suffix: str) -> None:
    value = prefix + bad + suffix
    with pytest.raises(InvalidSerial):
        validate_serial(value)
    with pytest.raises(InvalidLot):
        validate_lot(value)


# --- Sgtin ------------------------------------------------------------------------------------


def test_sgtin_parse_normalizes_and_prints_element_strings() -> None:
    item = Sgtin.parse("4006381333931", "SN/001%")
    assert item == Sgtin("04006381333931", "SN/001%")
    assert str(item) == "(01)04006381333931(21)SN/001%"


def test_sgtin_parse_validates_both_parts() -> None:
    with pytest.raises(InvalidGtin):
        Sgtin.parse("4006381333932", "SN1")
    with pytest.raises(InvalidSerial):
        Sgtin.parse("4006381333931", "SN 1")
