"""Offline verdict time in the browser, for `borderledger bench ui` (target p95 <= 100 ms).

Measured on the officer's Scan page with the network cut (Playwright `set_offline`): for each
code, the time from submitting the scan form to the verdict painted (the `offline-verdict`
event, then the next animation frame), inside the page with `performance.now()`, so nothing of
Playwright's own round trips is counted. Each verdict is judged from the signed trust bundle in
IndexedDB (its Ed25519 signature checked once, when first used), hashed with keccak-256,
the tag's secp256k1 signature recovered, and — on a registered device — signed and queued.

`measure_offline(page, codes)` takes a Playwright page already signed in on /scan with the
trust bundle fetched (`data-offline-ready` set on <html>), and the codes: each a dict with
`tag` or `gtin`/`serial`/`lot`. `bench ui` (bench/ui.py) starts the stack, the browser and
the officer, and calls it with 50 labels.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

#: Runs in the page: fill the form, submit, wait for the verdict to be painted; times in ms.
_LOOP = """async (codes) => {
  const form = document.getElementById("scan-form");
  form.noValidate = true; // a tag alone: the typed fields' `required` does not apply
  const times = [];
  const verdicts = {};
  for (const code of codes) {
    for (const name of ["tag", "gtin", "serial", "lot"]) {
      const field = form.elements.namedItem(name);
      if (field) field.value = code[name] || "";
    }
    const painted = new Promise((resolve) => {
      window.addEventListener("offline-verdict", (e) => {
        requestAnimationFrame(() => resolve(e.detail));
      }, { once: true });
    });
    const t0 = performance.now();
    form.requestSubmit();
    const answer = await painted;
    times.push(performance.now() - t0);
    verdicts[answer.verdict] = (verdicts[answer.verdict] || 0) + 1;
  }
  return { times, verdicts };
}"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure_offline(
    page: Any, codes: list[dict[str, str]], target_ms: float = 100.0
) -> dict[str, Any]:
    """Offline verdict times over `codes` (network cut during the run, restored after)."""
    if not codes:
        raise ValueError("measure_offline needs at least one code")
    page.wait_for_function("document.documentElement.dataset.offlineReady === 'true'")
    page.context.set_offline(True)
    try:
        result = page.evaluate(_LOOP, codes)
    finally:
        page.context.set_offline(False)
    times: list[float] = [float(t) for t in result["times"]]
    p95 = _percentile(times, 0.95)
    return {
        "offline_verdict_ms": {
            "n": len(times),
            "p50": round(statistics.median(times), 2),
            "p95": round(p95, 2),
            "max": round(max(times), 2),
            "target_p95": target_ms,
            "meets_target": p95 <= target_ms,
        },
        "offline_verdicts": result["verdicts"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
