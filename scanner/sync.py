"""Send the offline queue to the gateway: POST /v1/scans/sync in batches, oldest first.

Each batch is marked from the gateway's per-scan answer before the next is sent, so an
interruption (network gone again, Ctrl-C) loses at most the answer to one batch; re-running
sends those scans again and the gateway answers `duplicate` for the ones it already stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from scanner.device import DeviceKey
from scanner.queue import ScanQueue
from scanner.verify import CLEARED, GatewayError, GatewayUnreachable, _message

DEFAULT_BATCH = 100


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
            body = {
                "deviceId": device.device_id,
                "scans": [{"record": s.record, "signature": s.signature} for s in batch],
            }
            try:
                response = client.post("/v1/scans/sync", json=body)
            except httpx.HTTPError as exc:
                raise GatewayUnreachable(
                    f"cannot reach the gateway at {url}: {exc}; "
                    f"{queue.counts()['pending']} scans stay queued, run sync again"
                ) from None
            if response.status_code != 200:
                raise GatewayError(
                    f"the gateway at {url} refused the sync ({response.status_code}: "
                    f"{_message(response)})"
                )
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
