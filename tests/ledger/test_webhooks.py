"""Webhook signatures as a receiver checks them, the retry schedule, endpoint URL rules."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput, InvalidSignature
from ledger.webhooks import (
    SECRET_PREFIX,
    backoff_delay,
    compute_signature,
    generate_secret,
    parse_allowlist,
    parse_signature_header,
    refused_address,
    signature_header,
    validate_endpoint_url,
    verify_signature,
)

SECRET = "whsec_test-secret"
NOW = 1_800_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"x","type":"alert.created"}'
    header = signature_header([SECRET], body, timestamp=NOW)
    independent = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={independent}"
    assert verify_signature(SECRET, header, body, now=NOW + 10) == NOW


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=60), st.integers(0, 2**40))
def test_round_trip_and_any_flipped_bit_fails(body: bytes, secret: str, t: int) -> None:
    header = signature_header([secret], body, timestamp=t)
    assert verify_signature(secret, header, body, now=t) == t
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        with pytest.raises(InvalidSignature, match="no v1 signature matches"):
            verify_signature(secret, header, flipped, now=t)
    with pytest.raises(InvalidSignature):
        verify_signature(secret + "x", header, body, now=t)
    # the timestamp is signed too: moving it breaks the signature
    moved = header.replace(f"t={t},", f"t={t + 1},")
    with pytest.raises(InvalidSignature, match="no v1 signature matches"):
        verify_signature(secret, moved, body, now=t)


def test_old_signatures_are_refused_outside_the_tolerance() -> None:
    body = b"{}"
    header = signature_header([SECRET], body, timestamp=NOW)
    assert verify_signature(SECRET, header, body, tolerance=300, now=NOW + 300) == NOW
    with pytest.raises(InvalidSignature, match="301s from now; tolerance is 300s"):
        verify_signature(SECRET, header, body, tolerance=300, now=NOW + 301)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_signature(SECRET, header, body, tolerance=300, now=NOW - 301)


def test_rotation_header_carries_one_signature_per_secret_and_either_verifies() -> None:
    body = b'{"a":1}'
    header = signature_header(["whsec_new", "whsec_old"], body, timestamp=NOW)
    t, sigs = parse_signature_header(header)
    assert t == NOW and sigs == [
        compute_signature("whsec_new", NOW, body),
        compute_signature("whsec_old", NOW, body),
    ]
    for secret in ("whsec_new", "whsec_old"):
        assert verify_signature(secret, header, body, now=NOW) == NOW
    with pytest.raises(InvalidSignature):
        verify_signature("whsec_other", header, body, now=NOW)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("", "malformed"),
        ("v1=abc", "no t= timestamp"),
        (f"t={NOW}", "no v1= signature"),
        ("t=soon,v1=abc", "not unix seconds"),
        (f"t={NOW},v1", "malformed"),
        (f"t={NOW},v0=abc", "no v1= signature"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(header: str, problem: str) -> None:
    with pytest.raises(InvalidSignature, match=problem):
        verify_signature(SECRET, header, b"{}", now=NOW)


def test_secrets_are_fresh_and_prefixed() -> None:
    made = {generate_secret() for _ in range(50)}
    assert len(made) == 50
    assert all(s.startswith(SECRET_PREFIX) and len(s) > 40 for s in made)


@given(st.integers(1, 200), st.floats(0.01, 100), st.floats(0.01, 10_000), st.integers(0, 2**32))
def test_backoff_grows_is_jittered_and_capped(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_doubles_until_the_cap() -> None:
    low = [backoff_delay(n, 1.0, 60.0, _Fixed(0.0)) for n in range(1, 10)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    high = [backoff_delay(n, 1.0, 60.0, _Fixed(1.0)) for n in range(1, 10)]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    with pytest.raises(InvalidInput):
        backoff_delay(0, 1.0, 60.0)


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.acme.example/borderledger",
        "http://127.0.0.1:8080/hook?token=abc",
        "https://[2001:db8::1]:8443/x",
    ],
)
def test_good_urls_are_accepted(url: str) -> None:
    assert validate_endpoint_url(f"  {url} ") == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "non-empty"),
        ("ftp://files.acme.example/", "scheme must be http or https, got 'ftp'"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("hooks.acme.example/x", "scheme must be http or https, got 'none'"),
        ("https://", "has no host"),
        ("https://user:pw@acme.example/", "user:password"),
        ("https://acme.example/#part", "fragment"),
        ("https://acme.example:99999/", "not a valid URL"),
        ("https://acme.example:0/", "port must be 1-65535"),
        ("https://acme.example/a b", "spaces or control characters"),
        ("https://acme.example/" + "a" * 2100, "at most 2048"),
        ("http://[::1/", "not a valid URL"),
        ("https://bücher.example/hook", "must be ASCII"),
        ("https://acme.example/\ud800", "must be ASCII"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem.replace("(", r"\(").replace(")", r"\)")):
        validate_endpoint_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:9000/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
    ],
)
def test_private_hosts_are_refused_when_not_allowed(url: str) -> None:
    assert validate_endpoint_url(url, allow_private=True) == url
    with pytest.raises(InvalidInput, match="loopback, private or reserved"):
        validate_endpoint_url(url, allow_private=False)
    assert validate_endpoint_url("https://8.8.8.8/x", allow_private=False) == "https://8.8.8.8/x"


def test_the_receiver_snippet_in_the_docs_agrees_with_verify_signature() -> None:
    """docs/webhooks.md shows receivers a standalone check; it must accept what the gateway
    signs (both secrets during a rotation) and refuse what `verify_signature` refuses."""
    import re
    import time
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    [snippet] = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    verify = namespace["verify"]
    assert callable(verify)
    body = b'{"id":"d1","type":"alert.created"}'
    header = signature_header(["whsec_new", "whsec_old"], body)
    assert verify("whsec_new", header, body) and verify("whsec_old", header, body)
    assert not verify("whsec_other", header, body)
    assert not verify("whsec_new", header, body + b" ")
    stale = signature_header(["whsec_new"], body, timestamp=int(time.time()) - 301)
    assert not verify("whsec_new", stale, body)
    with pytest.raises(InvalidSignature):
        verify_signature("whsec_new", stale, body)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.2.3.4", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.9", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved; Python files 240/4 under private
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("fc00::1", "private"),
        ("not-an-ip", "not an IP"),
    ],
)
def test_internal_addresses_are_refused_with_the_reason(address: str, why: str) -> None:
    reason = refused_address(address)
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_address(address) is None


def test_the_allow_list_names_networks_and_hosts() -> None:
    networks, hosts = parse_allowlist(" 127.0.0.1/32, 10.0.0.0/8 ,::1, Hooks.Internal. ,")
    assert [str(n) for n in networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert hosts == {"hooks.internal"}
    assert refused_address("127.0.0.1", networks) is None
    assert refused_address("10.9.9.9", networks) is None
    assert refused_address("::ffff:127.0.0.1", networks) is None
    assert "loopback" in (refused_address("127.0.0.2", networks) or "")
    assert parse_allowlist("") == ((), frozenset())
    with pytest.raises(InvalidInput, match="no CIDR"):
        parse_allowlist("10.0.0.0/33")
    with pytest.raises(InvalidInput, match="no CIDR"):
        parse_allowlist("hooks internal")
