"""Webhook signatures, retry schedule and endpoint URLs: the pure half of alert webhooks.

The gateway pushes detector alerts to a rights holder's HTTPS endpoint
(`api.webhook_delivery`). Every request carries ``BorderLedger-Signature: t=<unix
seconds>,v1=<hex>`` where ``<hex>`` is HMAC-SHA256 keyed with the endpoint secret (the whole
``whsec_…`` string, UTF-8) over
``f"{t}.{raw body}"`` — the scheme Stripe uses, so receivers can reuse what they know. While a
rotated-out secret is still in its grace period the header carries one ``v1=`` per secret.

`verify_signature` is what a receiver runs (the tests use it exactly so); it checks the
timestamp against a tolerance to stop replays of captured requests and compares in constant
time. Nothing here imports FastAPI or web3.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import secrets
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from ledger.errors import InvalidInput, InvalidSignature

SIGNATURE_HEADER = "BorderLedger-Signature"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
#: Seconds a receiver should accept between the signed timestamp and its own clock.
DEFAULT_TOLERANCE = 300.0


def generate_secret() -> str:
    """A fresh endpoint secret: 256 random bits, URL-safe, recognisable by its prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under the secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(
    signing_secrets: Iterable[str], body: bytes, timestamp: int | None = None
) -> str:
    """The ``BorderLedger-Signature`` value: ``t=…`` then one ``v1=…`` per secret."""
    t = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={t}"] + [f"v1={compute_signature(s, t, body)}" for s in signing_secrets]
    return ",".join(parts)


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; `InvalidSignature` when it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidSignature(f"malformed signature header element {part.strip()!r}")
        if key == "t":
            if not value.isdigit():
                raise InvalidSignature(f"signature timestamp {value!r} is not unix seconds")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # other schemes (v0, future v2) are ignored, as Stripe receivers do
    if timestamp is None:
        raise InvalidSignature("signature header has no t= timestamp")
    if not signatures:
        raise InvalidSignature("signature header has no v1= signature")
    return timestamp, signatures


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery as a receiver must: some ``v1`` matches HMAC-SHA256(secret, t.body)
    and ``t`` is within `tolerance` seconds of now. Returns ``t``; raises `InvalidSignature`
    naming what failed. `body` must be the raw bytes received, before any JSON parsing."""
    timestamp, signatures = parse_signature_header(header)
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise InvalidSignature("no v1 signature matches the body under this secret")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(
            f"signature timestamp {timestamp} is {abs(current - timestamp):.0f}s from now; "
            f"tolerance is {tolerance:.0f}s"
        )
    return timestamp


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1 = after the first failure): exponential
    ``base * 2**(attempt-1)`` capped at `cap`, with "equal jitter" (half fixed, half random)
    so receivers coming back after an outage are not hit by every gateway at once, while the
    delay still grows."""
    if attempt < 1:
        raise InvalidInput(f"attempt must be >= 1, got {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    draw = (rng or random).random()
    return ceiling / 2 + draw * ceiling / 2


def validate_endpoint_url(url: str, allow_private: bool = True) -> str:
    """An endpoint URL the gateway will POST to, or `InvalidInput` saying what is wrong.

    http or https only, a host, no user:password (it would be stored in clear and logged), no
    fragment. With `allow_private` False, literal loopback, private, link-local and reserved
    addresses (and ``localhost``) are refused, so a holder cannot aim the gateway at the
    operator's internal network."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("webhook url must be a non-empty string")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"webhook url is {len(url)} characters; at most {MAX_URL_LENGTH}")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidInput("webhook url must not contain spaces or control characters")
    if not url.isascii():
        raise InvalidInput(
            "webhook url must be ASCII: percent-encode the path, punycode the host (xn--…)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"webhook url {url!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise InvalidInput(f"webhook url scheme must be http or https, got {shown!r}")
    host = parts.hostname
    if not host:
        raise InvalidInput(f"webhook url {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("webhook url must not carry user:password; authenticate by signature")
    if parts.fragment:
        raise InvalidInput("webhook url must not have a #fragment")
    if port == 0:
        raise InvalidInput("webhook url port must be 1-65535")
    if not allow_private and _private_host(host):
        raise InvalidInput(
            f"webhook url host {host!r} is a loopback, private or reserved address; "
            "this gateway only delivers to public hosts"
        )
    return url


#: Cloud instance-metadata services, named in refusals (they are link-local or private too).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowlist(text: str) -> tuple[tuple[Network, ...], frozenset[str]]:
    """(networks, host names) of an allow-list: comma-separated CIDRs or addresses
    (``127.0.0.0/8``, ``::1``) and host names (``hooks.internal``); `InvalidInput` naming a
    bad element."""
    networks: list[Network] = []
    hosts: set[str] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
            continue
        except ValueError:
            pass
        name = item.lower().rstrip(".")
        if not name or not all(c.isalnum() or c in "-." for c in name) or "/" in item:
            raise InvalidInput(f"webhook allow-list element {item!r} is no CIDR, address or host")
        hosts.add(name)
    return tuple(networks), frozenset(hosts)


def refused_address(address: str, allowed: Iterable[Network] = ()) -> str | None:
    """Why the gateway must not connect to `address` for a webhook (None: it may): loopback,
    private, link-local, cloud metadata, unspecified, multicast, reserved or otherwise
    non-public addresses, unless an `allowed` network holds it. An IPv4 address mapped or
    embedded in IPv6 is judged as the IPv4 address it reaches."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return refused_address(str(inner), allowed)
    if any(ip in network for network in allowed):
        return None
    kinds = [
        ("a cloud metadata service address", ip in METADATA_ADDRESSES),
        ("a loopback address", ip.is_loopback),
        ("the unspecified address", ip.is_unspecified),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("a private address", ip.is_private),
        ("a reserved address", ip.is_reserved),
        ("not a public address", not ip.is_global),
    ]
    for kind, applies in kinds:
        if applies:
            return f"{ip} is {kind}"
    return None


def _private_host(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "backoff_delay",
    "compute_signature",
    "generate_secret",
    "parse_allowlist",
    "parse_signature_header",
    "refused_address",
    "signature_header",
    "validate_endpoint_url",
    "verify_signature",
]
