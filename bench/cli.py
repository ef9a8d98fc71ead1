"""`borderledger bench ...` commands; each prints one JSON object as its last stdout line."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

bench_app = typer.Typer(
    help="Benchmarks (print one JSON object, last line of stdout).", no_args_is_help=True
)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("sizes must be positive")
    return sizes


@bench_app.command("enroll")
def enroll(
    items: Annotated[int, typer.Option(help="items in the end-to-end enrollment")] = 1_000_000,
    gas_sizes: Annotated[str, typer.Option(help="batch sizes for gas per item")] = "1,100,10000",
    baseline_sizes: Annotated[str, typer.Option(help="ERC-721 baseline sizes")] = "1,100,1000",
    workers: Annotated[
        int | None, typer.Option(help="signing processes (default: all cores)")
    ] = None,
    node: Annotated[str, typer.Option(help="anvil or hardhat")] = "anvil",
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Gas per enrolled item vs one ERC-721 mint per item, and 1,000,000-item enrollment time."""
    from bench.enroll_chain import run_enroll_bench

    if items < 1:
        raise typer.BadParameter("--items must be positive")
    result = run_enroll_bench(items, _sizes(gas_sizes), _sizes(baseline_sizes), workers, node)
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("contract")
def contract(
    sequences: Annotated[
        int, typer.Option(help="random call sequences (Hypothesis examples)")
    ] = 256,
    depth: Annotated[int, typer.Option(help="steps per sequence (at most)")] = 100,
    seed: Annotated[int | None, typer.Option(help="random seed (default: derandomized)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Stateful property run of the registry on Anvil: random sequences of every external
    function from several accounts, the invariants checked after every step (bench/contract.py)."""
    import os

    from bench.contract import Deployment, run_state_machine
    from chain.node import LocalNode

    if sequences < 1 or depth < 1:
        raise typer.BadParameter("--sequences and --depth must be positive")
    with LocalNode("anvil") as node:
        result = run_state_machine(Deployment.create(node.url), sequences, depth, seed)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("enroll-api")
def enroll_api(
    items: Annotated[int, typer.Option(help="serials in the uploaded CSV")] = 1_000_000,
    database: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "sqlite",
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL database (a fresh schema is used and dropped)")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    samples: Annotated[int, typer.Option(help="downloaded tags verified afterwards")] = 20,
    poll: Annotated[float, typer.Option(help="seconds between job polls")] = 1.0,
    labels: Annotated[
        int, typer.Option(help="labels in the PDF and ZIP label files (each made by a job)")
    ] = 2_000,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """A large enrollment through the gateway's API: CSV upload (202 + job), job polled until
    done, tags downloaded as a stream, a sample verified; wall time, items/s, peak RSS; then
    PDF and ZIP label files of a `labels`-item batch as jobs (labels/s)."""
    from bench.enroll_api import run_enroll_api_bench

    choices: dict[str, tuple[Literal["sqlite", "postgresql"], ...]] = {
        "sqlite": ("sqlite",),
        "postgresql": ("postgresql",),
        "both": ("sqlite", "postgresql"),
    }
    if database not in choices:
        raise typer.BadParameter("--database must be sqlite, postgresql or both")
    if items < 1 or samples < 1 or poll <= 0 or labels < 1:
        raise typer.BadParameter("--items, --samples, --poll and --labels must be positive")
    result = run_enroll_api_bench(
        choices[database],
        items=items,
        samples=samples,
        poll=poll,
        postgres_url=postgres_url,
        labels=labels,
    )
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("verify")
def verify(
    items: Annotated[int, typer.Option(help="items enrolled, one signed tag each")] = 10_000,
    seconds: Annotated[float, typer.Option(help="length of each measured phase")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="closed-loop connections")] = 32,
    rate: Annotated[float, typer.Option(help="open-loop arrival rate, per second")] = 500.0,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 2,
    database: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "both",
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL database (a fresh schema is used and dropped)")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    client: Annotated[str, typer.Option(help="load generator: raw (asyncio) or httpx")] = "raw",
    naive_seconds: Annotated[
        float | None, typer.Option(help="length of the naive run (default: --seconds)")
    ] = None,
    naive_http: Annotated[
        bool, typer.Option(help="also serve the naive design over HTTP and measure it")
    ] = True,
    warmup: Annotated[float, typer.Option(help="warm-up before measuring, seconds")] = 2.0,
    location: Annotated[
        str | None,
        typer.Option(
            help="UN/LOCODE sent with every scan (e.g. NLRTM): each verification also runs "
            "the diversion/clone detector, as officers at a port do"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Verifications per second and latency over HTTP (real uvicorn), side by side with a
    naive design making one eth_call of the registry's checkTag per verification."""
    from bench.verify import run_verify_bench

    choices: dict[str, tuple[Literal["sqlite", "postgresql"], ...]] = {
        "sqlite": ("sqlite",),
        "postgresql": ("postgresql",),
        "both": ("sqlite", "postgresql"),
    }
    if database not in choices:
        raise typer.BadParameter("--database must be sqlite, postgresql or both")
    if client not in ("raw", "httpx"):
        raise typer.BadParameter("--client must be raw or httpx")
    if items < 1 or seconds <= 0 or concurrency < 1 or rate <= 0 or workers < 1:
        raise typer.BadParameter("sizes, durations and rates must be positive")
    if (naive_seconds is not None and naive_seconds <= 0) or warmup <= 0:
        raise typer.BadParameter("--naive-seconds and --warmup must be positive")
    if location is not None:
        from detector import LocationRegistry

        location = location.strip().upper()
        if location not in LocationRegistry.default():
            raise typer.BadParameter(f"--location {location!r} is not a known UN/LOCODE")
    result = run_verify_bench(
        choices[database],
        items=items,
        seconds=seconds,
        concurrency=concurrency,
        rate=rate,
        workers=workers,
        client="raw" if client == "raw" else "httpx",
        naive_seconds=naive_seconds,
        naive_http=naive_http,
        postgres_url=postgres_url,
        warmup=warmup,
        location=location,
    )
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("scan")
def scan(
    images: Annotated[int, typer.Option(help="synthetic label photos to generate")] = 1000,
    workers: Annotated[
        int | None, typer.Option(help="decoding processes (default: all cores)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
    types: Annotated[
        str | None,
        typer.Option(
            help="damage types, comma-separated (default: all of scanner.damage.DAMAGE_TYPES)"
        ),
    ] = None,
) -> None:
    """Decode rate by damage type on generated label photos, and images/s end to end
    (decode + verify through a real gateway)."""
    from bench.scan import run_scan_bench
    from scanner.damage import DAMAGE_TYPES

    if images < 1 or (workers is not None and workers < 1):
        raise typer.BadParameter("--images and --workers must be positive")
    chosen = tuple(t.strip() for t in (types or ",".join(DAMAGE_TYPES)).split(",") if t.strip())
    unknown = [t for t in chosen if t not in DAMAGE_TYPES]
    if unknown or not chosen:
        raise typer.BadParameter(f"--types: choose among {', '.join(DAMAGE_TYPES)}")
    result = run_scan_bench(images, workers, types=chosen)
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("detector")
def detector(
    batches: Annotated[int, typer.Option(help="simulated batches for the quality run")] = 400,
    read_rate: Annotated[float, typer.Option(help="probability that a read happens")] = 0.8,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 7,
    events: Annotated[
        int, typer.Option(help="scan events in the batched throughput run")
    ] = 400_000,
    single_events: Annotated[
        int, typer.Option(help="scan events in the single-scan throughput run")
    ] = 5_000,
    enrolled: Annotated[int, typer.Option(help="enrolled items (id space)")] = 10_000_000,
    chunk: Annotated[int, typer.Option(help="scans per store transaction when batched")] = 2_000,
    prefill: Annotated[
        int, typer.Option(help="items stored as seen earlier before timing (table size)")
    ] = 1_000_000,
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URL to measure on too (default: DATABASE_URL if PostgreSQL)"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Precision and recall of the diversion, clone and volume detector on simulated flows,
    false alert rate on legitimate items, and scan events/s with the state in the database
    (SQLite, and PostgreSQL when a URL is given), batched and one scan at a time."""
    from bench.detector import run_detector_bench

    if batches < 1 or events < 1 or single_events < 1 or enrolled < 1000 or chunk < 1:
        raise typer.BadParameter(
            "--batches, --events, --single-events, --chunk positive; --enrolled >= 1000"
        )
    if prefill < 0:
        raise typer.BadParameter("--prefill must be >= 0")
    if not 0 < read_rate <= 1:
        raise typer.BadParameter("--read-rate must be in (0, 1]")
    result = run_detector_bench(
        batches=batches,
        read_rate=read_rate,
        seed=seed,
        events=events,
        single_events=single_events,
        enrolled=enrolled,
        chunk=chunk,
        database_url=database_url,
        prefilled=prefill,
    )
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("epcis")
def epcis(
    events: Annotated[int, typer.Option(help="events in the measured document")] = 1000,
    repeats: Annotated[int, typer.Option(help="measured runs of each phase")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """EPCIS 2.0 capture speed: schema validation and parsing of one large document."""
    from bench.epcis import run_epcis_bench

    if events < 1 or repeats < 1:
        raise typer.BadParameter("--events and --repeats must be positive")
    print(json.dumps(run_epcis_bench(events, repeats), separators=(",", ":")))


@bench_app.command("custody")
def custody(
    entries: Annotated[int, typer.Option(help="log entries appended (border scans)")] = 1_000_000,
    item_events: Annotated[
        int, typer.Option(help="entries of the item whose timeline is timed")
    ] = 100,
    requests: Annotated[int, typer.Option(help="timeline requests timed")] = 200,
    database: Annotated[str, typer.Option(help="sqlite or postgresql")] = "sqlite",
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL database (a fresh schema is used and dropped)")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Custody log: entries/s through the scan path, gas per entry of one anchor, inclusion
    proof size and verification time, timeline p99 over HTTP for an item with 100 entries."""
    from bench.custody import run_custody_bench

    if item_events < 1 or entries < item_events:
        raise typer.BadParameter("need 1 <= --item-events <= --entries")
    if database not in ("sqlite", "postgresql"):
        raise typer.BadParameter("--database must be sqlite or postgresql")
    result = run_custody_bench(entries, item_events, requests, database, postgres_url)
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("cases")
def cases(
    database: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "both",
    total: Annotated[int, typer.Option(help="cases in the database")] = 100_000,
    open_cases: Annotated[int, typer.Option(help="of which open, with a running clock")] = 20_000,
    due: Annotated[int, typer.Option(help="of which with a clock already due")] = 10_000,
    runs: Annotated[int, typer.Option(help="timed runs of each query")] = 40,
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL database (a fresh schema is used and dropped)")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Customs cases at 100,000: case list by next deadline p95, a year's statistics by three
    dimensions p95, and 10,000 clocks falling due at once (each stored once)."""
    from bench.cases import run_cases_bench

    kinds = {"both": ["sqlite", "postgresql"], "sqlite": ["sqlite"], "postgresql": ["postgresql"]}
    if database not in kinds:
        raise typer.BadParameter("--database: sqlite, postgresql or both")
    if not 0 <= due <= open_cases < total or runs < 1:
        raise typer.BadParameter("need 0 <= --due <= --open-cases < --total and --runs >= 1")
    result = run_cases_bench(kinds[database], total, open_cases, due, runs, postgres_url)
    print(json.dumps(result, separators=(",", ":")))


@bench_app.command("ui")
def ui(
    labels: Annotated[int, typer.Option(help="labels scanned with the fake camera")] = 50,
    timeline_entries: Annotated[
        int, typer.Option(help="custody-log entries of the item on the auditor's timeline page")
    ] = 100,
    timeline_in_process: Annotated[
        bool,
        typer.Option(
            help="serve the timeline page from the bench's own process (shares its GIL with "
            "Playwright), not from a gateway process of its own"
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """The officer's app in chromium with a fake camera: press "Scan with camera" → verdict
    painted (p50, p95 over the labels) and sign-in → scan page ready (bench/ui.py); the
    offline verdict; the auditor's timeline page: first paint and every proof checked in the
    browser against the chain (bench/ui_timeline.py)."""
    from bench.ui import run_ui_bench

    if labels < 1 or timeline_entries < 1:
        raise typer.BadParameter("--labels and --timeline-entries must be positive")
    print(
        json.dumps(
            run_ui_bench(labels, timeline_entries, timeline_in_process), separators=(",", ":")
        )
    )


@bench_app.command("guides")
def guides(
    database: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "sqlite",
    count: Annotated[int, typer.Option(help="published guides in the database")] = 10_000,
    runs: Annotated[int, typer.Option(help="timed searches of each kind")] = 100,
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL database (a fresh schema is used and dropped)")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Guide search over 10,000 guides by brand, name, GTIN and company prefix: p95 per kind
    (target <= 100 ms)."""
    from bench.guides import run_guides_bench

    kinds = {"both": ["sqlite", "postgresql"], "sqlite": ["sqlite"], "postgresql": ["postgresql"]}
    if database not in kinds:
        raise typer.BadParameter("--database: sqlite, postgresql or both")
    if count < 100 or runs < 1:
        raise typer.BadParameter("need --count >= 100 and --runs >= 1")
    print(
        json.dumps(
            run_guides_bench(kinds[database], count, runs, postgres_url), separators=(",", ":")
        )
    )
