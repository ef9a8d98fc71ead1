"""The rate limits the benchmarks run under (docs/limits.md, "Benchmarks").

A benchmark drives one gateway with one API key from one address as hard as it can: that key
stands for a whole port's fleet of scanners (bench verify), a partner's capture pipeline
(bench custody) or a rights holder's integration (bench enroll-api), not for one handheld.
So each runs under this load-test profile, set explicitly like any deployment's limits (the
limiter still runs and counts every request: its cost is part of what is measured), with
each class high enough for the most the bench can send on this kind of machine.
"""

from __future__ import annotations

import json
from typing import Any

#: Per key and per address: well above the peak rate each bench reaches (verify: ~10k/s on
#: 4 workers; capture and timeline reads: a few hundred/s; enrollment: a handful of calls).
BENCH_LIMITS = {
    "verify": "50000/second",
    "enroll": "100/second",
    "capture": "5000/second",
    "sync": "1000/second",
    "reads": "5000/second",
    "writes": "100/second",
}


def bench_limit_settings() -> dict[str, Any]:
    """`Settings(**bench_limit_settings())` for a bench's in-process gateway."""
    return {"rate_limits": dict(BENCH_LIMITS), "rate_limits_per_address": dict(BENCH_LIMITS)}


def bench_limit_env() -> dict[str, str]:
    """The same as environment variables, for a bench's gateway processes."""
    return {
        "BORDERLEDGER_RATE_LIMITS": json.dumps(BENCH_LIMITS),
        "BORDERLEDGER_RATE_LIMITS_PER_ADDRESS": json.dumps(BENCH_LIMITS),
    }
