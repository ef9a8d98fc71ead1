"""`borderledger bench guides`: guide search over 10,000 guides (target p95 <= 100 ms).

Per database (a fresh SQLite file; a fresh PostgreSQL schema dropped afterwards): 10,000
published guides of 100 brands (GTINs and company prefixes) are inserted through the table;
then an officer's searches — by brand, by product name, by either (`q`), by GTIN (its guide
and the company prefixes it falls under) and by company prefix — run as the route answers
them (`api.services.guides.search`, each result shaped), without HTTP: p50/p95 per kind."""

from __future__ import annotations

import contextlib
import os
import random
import statistics as stats
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from api.db import make_engine
from api.guide_models import Guide
from api.migrate import upgrade
from api.models import Organization, Role
from api.principal import Actor, Principal
from api.services import guides
from bench.verify import _postgres_schema
from guides.model import CATEGORIES, GuideContent
from ledger.config import Settings
from ledger.gs1 import gtin_check_digit

TARGET_P95_MS = 100.0
WORDS = ("Chrono", "Aqua", "Nova", "Terra", "Luxe", "Sport", "Classic", "Ultra", "Pro", "Mini")


@contextlib.contextmanager
def _database(kind: str, postgres_url: str) -> Iterator[tuple[str, str | None]]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-guides-") as folder:
            yield f"sqlite:///{Path(folder) / 'guides.db'}", None
    else:
        with _postgres_schema(postgres_url) as schema:
            yield Settings(database_url=postgres_url).sqlalchemy_url, schema


def _gtin(prefix: str, item: int) -> str:
    body = "0" + prefix + str(item).zfill(12 - len(prefix))
    return body + str(gtin_check_digit(body))


def _contents(count: int, rng: random.Random) -> list[GuideContent]:
    out = []
    categories = list(CATEGORIES)
    for i in range(count):
        brand = i % 100
        prefix = f"{950000 + brand * 7:07d}"
        per_prefix = i // 100
        common: dict[str, Any] = {
            "brand": f"Brand {brand:03d} {WORDS[brand % len(WORDS)]}",
            "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} model {i}",
            "category": categories[i % len(categories)],
            "msrpCents": rng.randrange(500, 500_000),
            "features": [{"kind": "label", "description": "woven label, serif font"}],
            "recordations": [
                {"kind": "cbp_recordation", "number": f"TMK {i}", "expires": "2099-01-01"}
            ],
        }
        if per_prefix == 0:
            out.append(GuideContent.model_validate({**common, "companyPrefix": prefix}))
        else:
            out.append(GuideContent.model_validate({**common, "gtin": _gtin(prefix, per_prefix)}))
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run_one(kind: str, count: int, runs: int, postgres_url: str) -> dict[str, Any]:
    rng = random.Random(15)
    with _database(kind, postgres_url) as (url, schema):
        engine = make_engine(url, schema)
        try:
            upgrade(engine)
            started = time.perf_counter()
            contents = _contents(count, rng)
            now = datetime.now(UTC)
            with Session(engine, expire_on_commit=False) as session:
                holder = Organization(name="Bench brand owner", role=Role.RIGHTS_HOLDER)
                agency = Organization(name="Bench customs", role=Role.CUSTOMS)
                session.add_all([holder, agency])
                session.commit()
                assert holder.id is not None
                for content in contents:
                    data = content.api()
                    session.add(
                        Guide(
                            guide_id=str(uuid.uuid4()),
                            holder_id=holder.id,
                            product=content.product_key,
                            gtin=content.gtin,
                            company_prefix=content.company_prefix,
                            brand_key=content.brand.lower(),
                            name_key=content.name.lower(),
                            category=content.category,
                            state="published",
                            version=1,
                            content=data,
                            expires=content.expires,
                            published_version=1,
                            published_content=data,
                            published_brand_key=content.brand.lower(),
                            published_name_key=content.name.lower(),
                            published_expires=content.expires,
                            published_at=now,
                            published_by=agency.name,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                session.commit()
                load_seconds = time.perf_counter() - started
                officer = Principal(agency, Actor("api_key", 0, "bench"))
                gtins = [c.gtin for c in contents if c.gtin]
                queries: dict[str, Any] = {
                    "brand": lambda: {"brand": f"brand {rng.randrange(100):03d}"},
                    "name": lambda: {"name": f"model {rng.randrange(count)}"},
                    "q": lambda: {"q": rng.choice(WORDS).lower()},
                    "gtin": lambda: {"gtin": rng.choice(gtins)},
                    "prefix": lambda: {"prefix": f"{950000 + rng.randrange(100) * 7:07d}"},
                }
                timings: dict[str, dict[str, Any]] = {}
                for name, make in queries.items():
                    ms = []
                    found = 0
                    for _ in range(runs):
                        args = make()
                        t = time.perf_counter()
                        hits = guides.search(session, officer, limit=50, **args)
                        shaped = [guides.shape(session, officer, g, photos=False) for g in hits]
                        ms.append((time.perf_counter() - t) * 1000)
                        found += len(shaped)
                    timings[name] = {
                        "p50": round(stats.median(ms), 2),
                        "p95": _p(ms, 0.95),
                        "mean_hits": round(found / runs, 1),
                    }
            worst = max(t["p95"] for t in timings.values())
            return {
                "database": kind,
                "guides": count,
                "load_seconds": round(load_seconds, 2),
                "search_ms": timings,
                "runs": runs,
                "worst_p95_ms": worst,
                "target_p95_ms": TARGET_P95_MS,
                "meets_target": worst <= TARGET_P95_MS,
            }
        finally:
            engine.dispose()


def run_guides_bench(kinds: list[str], count: int, runs: int, postgres_url: str) -> dict[str, Any]:
    return {
        "bench": "guides",
        "today": date.today().isoformat(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "results": [run_one(kind, count, runs, postgres_url) for kind in kinds],
    }
