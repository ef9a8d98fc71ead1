"""Send the offline queue to the gateway: POST /v1/scans/sync in batches, oldest first.

Each batch is marked from the gateway's per-scan answer before the next is sent, so an
interruption (network gone again, Ctrl-C) loses at most the answer to one batch; re-running
sends those scans again and the gateway answers `duplicate` for the ones it already stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from scanner.device import DeviceKey
from scanner.online import CLEARED, GatewayError, GatewayUnreachable, _message
from scanner.queue import QueuedScan, ScanQueue

DEFAULT_BATCH = 100
#: A sync burst (a long queue, or a batch the gateway refused sent again scan by scan) may
#: meet the gateway's `sync` rate limit (docs/limits.md): the device waits out each 429 for
#: its `Retry-After` (at most MAX_RETRY_AFTER seconds), up to RATE_LIMIT_WAITS times a request.
RATE_LIMIT_WAITS = 30
MAX_RETRY_AFTER = 60.0


@dataclass
class SyncReport:
    """What one `borderledger sync` did."""

    sent: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {"accepted": 0, "duplicate": 0, "rejected": 0}
    )
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def disagreements(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r.get("verdictDisagrees")]

    @property
    def not_cleared(self) -> list[dict[str, Any]]:
        return [
            r for r in self.results if r.get("status") == "accepted" and r["verdict"] not in CLEARED
        ]


def sync_queue(
    queue: ScanQueue,
    device: DeviceKey,
    url: str,
    key: str,
    batch_size: int = DEFAULT_BATCH,
    timeout: float = 30.0,
) -> SyncReport:
    """Send every pending scan; raise GatewayError when the gateway cannot take them (after
    marking the batches it did answer)."""
    report = SyncReport()
    after = 0
    with httpx.Client(
        base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        while True:
            batch = queue.pending(batch_size, after)
            if not batch:
                return report
            after = batch[-1].seq
            response = _post(client, url, device, queue, batch)
            if response.status_code == 422 and len(batch) > 1:
                # One unreadable row (a queue edited by hand) must not block the rest:
                # send the batch one by one, so only that row is refused.
                for scan in batch:
                    _answer(report, queue, [scan], _post(client, url, device, queue, [scan]), url)
                continue
            _answer(report, queue, batch, response, url)


def _post(
    client: httpx.Client, url: str, device: DeviceKey, queue: ScanQueue, batch: list[QueuedScan]
) -> httpx.Response:
    body = {
        "deviceId": device.device_id,
        "scans": [{"record": s.record, "signature": s.signature} for s in batch],
    }
    try:
        for _ in range(RATE_LIMIT_WAITS):
            response = client.post("/v1/scans/sync", json=body)
            if response.status_code != 429:
                return response
            time.sleep(_retry_after(response))
        return client.post("/v1/scans/sync", json=body)
    except httpx.HTTPError as exc:
        raise GatewayUnreachable(
            f"cannot reach the gateway at {url}: {exc}; "
            f"{queue.counts()['pending']} scans stay queued, run sync again"
        ) from None


def _retry_after(response: httpx.Response) -> float:
    """Seconds a 429 asks to wait (RFC 9110 delay-seconds; 1 when absent or unreadable)."""
    value = response.headers.get("retry-after", "")
    return min(float(value), MAX_RETRY_AFTER) if value.isdigit() else 1.0


def _answer(
    report: SyncReport,
    queue: ScanQueue,
    batch: list[QueuedScan],
    response: httpx.Response,
    url: str,
) -> None:
    """Mark each scan of `batch` from the gateway's answer (a refused lone scan: rejected)."""
    answered: dict[int, dict[str, Any]]
    if response.status_code == 422 and len(batch) == 1:
        refused: dict[str, Any] = {
            "position": 0,
            "scanId": batch[0].scan_id,
            "status": "rejected",
            "reason": "REQUEST_INVALID",
            "message": _message(response),
        }
        answered = {0: refused}
    elif response.status_code != 200:
        raise GatewayError(
            f"the gateway at {url} refused the sync ({response.status_code}: {_message(response)})"
        )
    else:
        try:
            results: list[dict[str, Any]] = response.json()["results"]
            answered = {int(r["position"]): r for r in results}
        except (ValueError, KeyError, TypeError):
            raise GatewayError(
                f"the gateway at {url} answered without results: {response.text[:200]}"
            ) from None
    report.sent += len(batch)
    for position, scan in enumerate(batch):
        result = answered.get(position)
        if result is None or result.get("status") not in report.counts:
            continue  # not answered: stays pending, sent again next time
        queue.mark(scan.scan_id, str(result["status"]), result)
        report.counts[str(result["status"])] += 1
        report.results.append(result)
