"""Ask the gateway for a verdict on each code: POST /v1/verify, with the officer's API key.

The gateway URL and key come from the command line, else from the environment
(`BORDERLEDGER_GATEWAY_URL`, `BORDERLEDGER_API_KEY`), else from `<home>/dev.json`, which
`borderledger up` writes while the development stack runs (the customs officer's key).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.errors import BorderLedgerError, InvalidInput
from scanner.decode import FileResult
from scanner.payload import Payload, classify

#: Verdicts that clear an item (exit 0); any other verdict makes `scan` exit 3.
CLEARED = frozenset({"GENUINE", "GENUINE_UNSIGNED"})


#: A folder of photos verifies faster than the gateway's `verify` limit may allow one key
#: (docs/limits.md): each 429 is waited out for its `Retry-After` (at most MAX_RETRY_AFTER
#: seconds), up to RATE_LIMIT_WAITS times a code, rather than ending the scan.
RATE_LIMIT_WAITS = 30
MAX_RETRY_AFTER = 60.0
#: Codes sent in one POST /v1/verify/batch (the gateway's VERIFY_BATCH_MAX).
BATCH_MAX = 100
BATCH_PATH = "/v1/verify/batch"


def retry_after(response: httpx.Response) -> float:
    """Seconds a 429 asks to wait (RFC 9110 delay-seconds; 1 when absent or unreadable)."""
    value = response.headers.get("retry-after", "")
    return min(float(value), MAX_RETRY_AFTER) if value.isdigit() else 1.0


class GatewayError(BorderLedgerError):
    """The gateway could not be reached, refused the key, or answered nonsense."""


class GatewayUnreachable(GatewayError):
    """No answer at all (connection refused, DNS, timeout): the case for the offline queue."""


def resolve_gateway(url: str | None, key: str | None, home: Path) -> tuple[str, str]:
    """(gateway URL, API key) from options, environment or `<home>/dev.json`."""
    url = url or os.environ.get("BORDERLEDGER_GATEWAY_URL")
    key = key or os.environ.get("BORDERLEDGER_API_KEY")
    dev_file = home / "dev.json"
    if (url is None or key is None) and dev_file.exists():
        try:
            dev = json.loads(dev_file.read_text())
            url = url or str(dev["gateway_url"])
            keys = dev.get("api_keys", {})
            key = key or str(keys.get("officer") or keys.get("admin"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{dev_file} is not a readable dev.json: {exc}") from None
    if not url:
        raise InvalidInput(
            "no gateway: give --gateway URL, set BORDERLEDGER_GATEWAY_URL, "
            "or run `borderledger up` (it writes <home>/dev.json)"
        )
    if not key:
        raise InvalidInput("no API key: give --api-key KEY or set BORDERLEDGER_API_KEY")
    return url.rstrip("/"), key


@dataclass
class CodeResult:
    """One code from one source (a file or typed entry) and what the gateway said."""

    source: str
    payload: Payload
    format: str = ""
    verdict: str | None = None
    summary: str | None = None
    reasons: list[str] = field(default_factory=list)
    response: dict[str, Any] | None = None
    error: str | None = None
    #: `--verify-chain`: what the chain said of the gateway's answer (scanner.chaincheck).
    chain_check: dict[str, Any] | None = None
    #: The scan id under which the code was queued for `borderledger sync` (scanner.queue).
    queued: str | None = None

    @property
    def judged(self) -> bool:
        return self.verdict is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "format": self.format or None,
            "payload": self.payload.to_json(),
            "verdict": self.verdict,
            "summary": self.summary,
            "reasons": self.reasons,
        }
        if self.response is not None:
            for name in ("item", "product", "batchId", "scanId", "index"):
                data[name] = self.response.get(name)
            for name in ("findings", "offline", "bundle", "signer"):  # + offline verdicts
                if name in self.response:
                    data[name] = self.response[name]
        if self.chain_check is not None:
            data["chainCheck"] = self.chain_check
        if self.error:
            data["error"] = self.error
        if self.queued:
            data["queued"] = self.queued
        return data


class Verifier:
    """A keep-alive HTTP client for one gateway. `shipment`: the shipment reference sent with
    every scan (scans group by it on the gateway), when set."""

    def __init__(
        self, url: str, key: str, timeout: float = 15.0, shipment: str | None = None
    ) -> None:
        self.url = url
        self.shipment = shipment
        self.client = httpx.Client(
            base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {key}"}
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def judge(self, result: CodeResult, location: str | None = None) -> CodeResult:
        """Fill in the verdict of `result` (left as is when its payload cannot be checked)."""
        body = result.payload.request
        if body is None:
            result.error = result.payload.message
            return result
        if location:
            body = {**body, "location": {"unlocode": location}}
        if self.shipment:
            body = {**body, "shipment": self.shipment}
        try:
            response = self.client.post("/v1/verify", json=body)
            for _ in range(RATE_LIMIT_WAITS):
                if response.status_code != 429:
                    break
                time.sleep(retry_after(response))
                response = self.client.post("/v1/verify", json=body)
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"cannot reach the gateway at {self.url}: {exc}") from None
        if response.status_code in (401, 403):
            raise GatewayError(
                f"the gateway at {self.url} refused the API key ({response.status_code}: "
                f"{_message(response)}); use a customs officer's key"
            )
        if response.status_code == 422:
            result.error = f"the gateway could not read it: {_message(response)}"
            return result
        if response.status_code != 200:
            raise GatewayError(
                f"the gateway at {self.url} answered {response.status_code}: {_message(response)}"
            )
        try:
            data: Any = response.json()
        except ValueError:
            data = None  # _fill says the answer holds no verdict
        self._fill(result, data, response)
        return result

    def judge_many(
        self, results: list[CodeResult], location: str | None = None
    ) -> list[CodeResult]:
        """Fill in the verdicts of `results` with POST /v1/verify/batch, BATCH_MAX codes a
        request (a folder's scan: one request per code cost the gateway more CPU in HTTP
        than in verifying). Items the rate limit refused are sent again after their
        `retryAfter`; a gateway without the batch route (404/405) is asked code by code."""
        checkable = [r for r in results if r.payload.request is not None]
        for r in results:
            if r.payload.request is None:
                r.error = r.payload.message
        for start in range(0, len(checkable), BATCH_MAX):
            self._judge_batch(checkable[start : start + BATCH_MAX], location)
        return results

    def _body(self, result: CodeResult, location: str | None) -> dict[str, Any]:
        body = dict(result.payload.request or {})
        if location:
            body["location"] = {"unlocode": location}
        if self.shipment:
            body["shipment"] = self.shipment
        return body

    def _judge_batch(self, results: list[CodeResult], location: str | None) -> None:
        waiting = results
        for _ in range(RATE_LIMIT_WAITS + 1):
            if not waiting:
                return
            items = [self._body(r, location) for r in waiting]
            try:
                response = self.client.post(BATCH_PATH, json={"items": items})
            except httpx.HTTPError as exc:
                raise GatewayUnreachable(f"cannot reach the gateway at {self.url}: {exc}") from None
            if response.status_code in (404, 405):
                for r in waiting:  # an older gateway: one request a code
                    self.judge(r, location)
                return
            if response.status_code == 429:
                time.sleep(retry_after(response))
                continue
            if response.status_code in (401, 403):
                raise GatewayError(
                    f"the gateway at {self.url} refused the API key ({response.status_code}: "
                    f"{_message(response)}); use a customs officer's key"
                )
            if response.status_code != 200:
                raise GatewayError(
                    f"the gateway at {self.url} answered {response.status_code}: "
                    f"{_message(response)}"
                )
            try:
                answers = response.json()["answers"]
                if len(answers) != len(waiting):
                    raise ValueError("one answer per item")
            except (ValueError, KeyError, TypeError):
                raise GatewayError(
                    f"the gateway at {self.url} answered without verdicts: {response.text[:200]}"
                ) from None
            again: list[CodeResult] = []
            pause = 0.0
            for result, answer in zip(waiting, answers, strict=True):
                status = answer.get("status") if isinstance(answer, dict) else None
                if status == 429:
                    again.append(result)
                    error = answer.get("error") or {}
                    pause = max(pause, min(float(error.get("retryAfter", 1)), MAX_RETRY_AFTER))
                elif status == 200:
                    self._fill(result, answer.get("answer"), response)
                else:
                    error = answer.get("error") if isinstance(answer, dict) else None
                    message = error.get("message") if isinstance(error, dict) else None
                    result.error = f"the gateway could not check it ({status}: {message})"
            waiting = again
            if waiting:
                time.sleep(pause or 1.0)
        for r in waiting:
            r.error = "the gateway's rate limit refused it too many times"

    def _fill(self, result: CodeResult, data: Any, response: httpx.Response) -> None:
        try:
            result.verdict = str(data["verdict"])
            result.summary = str(data.get("summary", ""))
            result.reasons = [str(r) for r in data.get("reasons", [])]
        except (ValueError, KeyError, TypeError):
            raise GatewayError(
                f"the gateway at {self.url} answered without a verdict: {response.text[:200]}"
            ) from None
        result.response = data


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
    except ValueError:
        pass
    return response.text[:200]


def results_of(file: FileResult) -> list[CodeResult]:
    """One CodeResult per code decoded from `file` (classified, not yet judged)."""
    return [
        CodeResult(str(file.path), classify(code.text, code.symbology_id, code.gs1), code.format)
        for code in file.codes
    ]
