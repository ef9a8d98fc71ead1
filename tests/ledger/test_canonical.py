"""`ledger.canonical.canonical_json` is RFC 8785 (JCS): byte for byte what an independent
implementation (npm `canonicalize`, run in node) writes, for generated and hand-picked values;
what JCS cannot hold is refused by both."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.enroll import batch_metadata
from ledger.batch import BatchInput
from ledger.canonical import LEGACY, MAX_SAFE, canonical_json, number, read_int
from ledger.errors import CanonicalJsonError, InvalidInput
from ledger.gs1 import CSET82
from tests.ledger.test_crosscheck_js import run_node


def jcs_in_node(values: list[Any]) -> list[dict[str, str]]:
    """Each value sent as JSON text (escaped ASCII, so lone surrogates travel too)."""
    cases = [json.dumps(v, ensure_ascii=True, allow_nan=True) for v in values]
    results: list[dict[str, str]] = run_node("canonicalize.mjs", {"cases": cases})["results"]
    assert len(results) == len(values)
    return results


def assert_same_as_node(values: list[Any]) -> None:
    for value, theirs in zip(values, jcs_in_node(values), strict=True):
        assert "text" in theirs, (value, theirs)
        assert canonical_json(value) == theirs["text"].encode("utf-8"), value


finite_floats = st.floats(allow_nan=False, allow_infinity=False)
any_doubles = st.integers(0, 2**64 - 1).map(
    lambda n: struct.unpack("<d", n.to_bytes(8, "little"))[0]
)
safe_ints = st.integers(-MAX_SAFE, MAX_SAFE)
# Any Unicode scalar value (no lone surrogates): JCS strings and names are I-JSON.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | safe_ints | finite_floats | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=6),
    max_leaves=25,
)

EDGE_CASES: list[Any] = [
    None,
    True,
    False,
    0,
    -0.0,
    0.0,
    1,
    -1,
    MAX_SAFE,
    -MAX_SAFE,
    MAX_SAFE - 1,
    2**52 + 0.5,
    10.0,
    2.5,
    0.1,
    1 / 3,
    1e-6,
    1e-7,
    1.5e-7,
    123e-20,
    1e20,
    1e21,
    1.2345e21,
    5e-324,
    1.7976931348623157e308,
    -1e-7,
    4.35,
    0.000001,
    333333333.33333329,
    1e23,
    9007199254740993.0,
    "",
    "é",
    "東京",
    "😀",
    "\u2028\u2029",
    "\x00\x01\x1f\x7f",
    "\b\t\n\f\r",
    '"\\/',
    "\ufeff",
    "\U0010ffff",
    "a\u0000b",
    {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order: the surrogate pair (D83D) sorts first
    {"b": 1, "a": 2, "A": 3, "": 4, "é": 5, "e\u0301": 6, "\u20ac": 7, "\r": 8, "1": 9},
    {"\U0001f600": {"\ue000": [1, {"z": None, "y": [True, False]}]}, "\uffff": "x"},
    [[], {}, [{}], {"a": []}],
    {"numbers": [1e-7, 1e21, -0.0, 10.0, 2**53], "text": "Zollamt München — 東京 \u2028"},
    59756140113959750,  # how JCS writes the double 5.975614011395975e16: an integer past 2^53
    -59756140113959750,
    100000000000000000000,
]


def test_edge_cases_match_an_independent_implementation() -> None:
    assert_same_as_node(EDGE_CASES)


@settings(max_examples=40, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=25))
def test_generated_values_match_an_independent_implementation(values: list[Any]) -> None:
    assert_same_as_node(values)


@settings(max_examples=20, deadline=None)
@given(st.lists(any_doubles.filter(math.isfinite), min_size=1, max_size=50))
def test_every_double_is_written_as_ecmascript_does(values: list[float]) -> None:
    assert_same_as_node(values)


def test_what_jcs_cannot_hold_is_refused_by_both() -> None:
    refused: list[Any] = ["\ud800", {"a": "x\udfffy"}, {"\udc00": 1}]
    for theirs in jcs_in_node(refused):
        assert "error" in theirs, theirs
    for value in refused:
        with pytest.raises(CanonicalJsonError, match="lone surrogate"):
            canonical_json(value)
    for value, match in [
        (float("nan"), "not a JSON number"),
        ({"x": [float("inf")]}, r"\$\.x\[0\]: inf is not a JSON number"),
        (-float("inf"), "not a JSON number"),
        (MAX_SAFE + 1, "beyond ±2\\^53"),
        (10**22, "beyond ±2\\^53"),  # a double, but JCS writes it 1e+22
        (10**400, "beyond ±2\\^53"),
        ({"n": -(2**64)}, r"\$\.n: the integer"),
        ({1: "a"}, "is not a string"),
        ({"x": object()}, "object is not a JSON value"),
        ({"x": b"bytes"}, "bytes is not a JSON value"),
        ({"x": {1, 2}}, "set is not a JSON value"),
    ]:
        with pytest.raises(CanonicalJsonError, match=match):
            canonical_json(value)
    assert issubclass(CanonicalJsonError, InvalidInput)  # a 422 in the gateway, not a 500


def test_tuples_are_arrays_and_key_order_does_not_matter() -> None:
    assert canonical_json((1, "a")) == canonical_json([1, "a"]) == b'[1,"a"]'
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1}) == b'{"a":2,"b":1}'


@given(finite_floats)
def test_numbers_read_back_exactly(value: float) -> None:
    assert float(number(value)) == value


@given(json_values)
def test_what_is_read_back_is_written_again_unchanged(value: Any) -> None:
    encoded = canonical_json(value)
    assert canonical_json(json.loads(encoded)) == encoded
    assert json.loads(encoded, parse_int=read_int) == value


def test_legacy_encoders_are_the_pre_jcs_bytes() -> None:
    value = {"b": 10.0, "a": "é", "n": float("nan")}
    assert LEGACY["python-ascii"](value) == b'{"a":"\\u00e9","b":10.0,"n":NaN}'
    with pytest.raises(CanonicalJsonError):
        LEGACY["python-utf8"](value)
    del value["n"]
    assert LEGACY["python-utf8"](value) == '{"a":"é","b":10.0}'.encode()


@settings(max_examples=100, deadline=None)
@given(
    lot=st.text(alphabet="".join(sorted(CSET82)), min_size=1, max_size=20),
    expiry=st.none() | st.sampled_from(["281231", "300100", "991231"]),
    count=st.integers(1, 50),
    root=st.binary(min_size=32, max_size=32),
)
def test_batch_metadata_bytes_are_what_was_anchored_before(
    lot: str, expiry: str | None, count: int, root: bytes
) -> None:
    """Batch metadata (its keccak256 is on chain) is all ASCII: JCS writes the bytes the
    earlier encoder did, so the format stays batch-metadata/1 and old hashes stay valid."""
    batch = BatchInput.create("09506000134352", lot, [f"S{i}" for i in range(count)], expiry)
    signer = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    meta = json.loads(batch_metadata(batch, signer, root))
    before = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    assert batch_metadata(batch, signer, root) == before
