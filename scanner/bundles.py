"""Getting a trust bundle onto a scanner, and judging codes with it (`scan --offline`).

`fetch_bundle` downloads GET /v1/trust-bundle and checks its signature before writing it.
Which key it checks against, in order:

1. `--pin KEY` (64 hex digits, from the gateway's operator or dev.json `gateway_key`);
2. the key pinned by an earlier fetch, kept next to the bundle in `<bundle>.pin`;
3. neither: **trust on first use** — the key the gateway announces at
   GET /v1/trust-bundle/key is taken and pinned. Whoever answers that first request is trusted
   from then on, so do the first fetch on a network you trust, or pass `--pin`.

A later fetch whose bundle is signed by another key than the pinned one is refused and the
old bundle is kept; so is a bundle that does not verify. The pin file deserves the protection
of the scanner's other settings: anyone who can rewrite it can make the scanner trust another
key (`scan --gateway-key` does not read it).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.errors import InvalidInput
from ledger.scanned import Scanned
from ledger.trustbundle import (
    BundleRefused,
    canonical_bytes,
    key_id,
    parse_public_key,
    public_key_hex,
    verify_bundle,
)
from scanner.offline import RouteCheck, TrustBundle, judge, load_bundle
from scanner.online import CodeResult, GatewayError, _message


def pin_path(bundle: Path) -> Path:
    """Where the key a bundle was checked with is kept: `<bundle>.pin`."""
    return bundle.with_name(bundle.name + ".pin")


def read_pin(bundle: Path) -> str | None:
    path = pin_path(bundle)
    if not path.exists():
        return None
    text = path.read_text().strip()
    parse_public_key(text)  # a corrupt pin file is an error, not "no pin"
    return text


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Fetched:
    bundle: TrustBundle
    path: Path
    pin_source: str  # "--pin", "pinned earlier", "trust on first use"
    size: int


def _get(client: httpx.Client, url: str, path: str) -> dict[str, Any]:
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        raise GatewayError(f"cannot reach the gateway at {url}: {exc}") from None
    if response.status_code in (401, 403):
        raise GatewayError(
            f"the gateway at {url} refused the API key ({response.status_code}: "
            f"{_message(response)}); trust bundles are for customs agencies and admins"
        )
    if response.status_code != 200:
        raise GatewayError(
            f"the gateway at {url} answered {response.status_code} for {path}: {_message(response)}"
        )
    try:
        data = response.json()
    except ValueError:
        raise GatewayError(f"the gateway at {url} answered {path} with no JSON") from None
    if not isinstance(data, dict):
        raise GatewayError(f"the gateway at {url} answered {path} with no JSON object")
    return data


def fetch_bundle(
    url: str, api_key: str, out: Path, pin: str | None = None, timeout: float = 60.0
) -> Fetched:
    """Download, verify and store a bundle (and its pin); nothing is written if it fails."""
    if pin is not None:
        parse_public_key(pin)
    with httpx.Client(
        base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}
    ) as client:
        envelope = _get(client, url, "/v1/trust-bundle")
        if pin is not None:
            pinned, source = pin, "--pin"
        elif (earlier := read_pin(out)) is not None:
            pinned, source = earlier, "pinned earlier"
        else:
            announced = _get(client, url, "/v1/trust-bundle/key").get("publicKey")
            if not isinstance(announced, str):
                raise GatewayError(f"the gateway at {url} announced no bundle key")
            pinned, source = announced, "trust on first use"
    verified = verify_bundle(envelope, pinned)
    bundle = TrustBundle.from_payload(verified.payload, verified.public_key)
    data = canonical_bytes(envelope)
    _write_atomic(out, data)
    _write_atomic(pin_path(out), (public_key_hex(parse_public_key(pinned)) + "\n").encode())
    return Fetched(bundle, out, source, len(data))


def open_bundle(path: Path, gateway_key: str | None) -> TrustBundle:
    """The bundle at `path`, verified with `gateway_key` or the key pinned next to it."""
    key = gateway_key or read_pin(path)
    if key is None:
        raise InvalidInput(
            f"no gateway key to check {path} with: give --gateway-key KEY (64 hex digits) or "
            f"fetch the bundle with `borderledger bundle fetch` (it pins the key in "
            f"{pin_path(path).name})"
        )
    return load_bundle(path, key)


class OfflineVerifier:
    """Judges codes from a verified bundle; the same `judge` call as `scanner.online.Verifier`."""

    def __init__(self, bundle: TrustBundle, max_age: float) -> None:
        self.bundle = bundle
        self.max_age = max_age
        self.route = RouteCheck(bundle)
        self.url = f"offline bundle {bundle.key_id} @ block {bundle.index_block}"

    def __enter__(self) -> OfflineVerifier:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def judge(self, result: CodeResult, location: str | None = None) -> CodeResult:
        body = result.payload.request
        if body is None:
            result.error = result.payload.message
            return result
        try:
            item = Scanned.from_request(body)
        except InvalidInput as exc:
            result.error = f"cannot be read: {exc}"
            return result
        now = time.time()
        data = judge(self.bundle, item, max_age=self.max_age, now=now)
        if location:
            self.route.apply(data, location, now)  # unknown location: InvalidInput, exit 2
            data["location"] = {"unlocode": location}
        result.verdict = str(data["verdict"])
        result.summary = str(data["summary"])
        result.reasons = list(data["reasons"])
        result.response = data
        return result


__all__ = [
    "BundleRefused",
    "Fetched",
    "OfflineVerifier",
    "fetch_bundle",
    "key_id",
    "open_bundle",
    "pin_path",
    "read_pin",
]
