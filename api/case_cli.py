"""`borderledger simulate cases`: a year of seizures into the gateway's database.

Import-light like `api.cli`: the database modules load only when the command runs.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from ledger.config import Settings
from ledger.errors import InvalidInput

simulate_app = typer.Typer(
    help="Simulated data for demos, pages and benchmarks.", no_args_is_help=True
)


@simulate_app.command("cases")
def simulate_cases(
    year: Annotated[int, typer.Option(help="US fiscal year (October to September)")] = 2023,
    seizures: Annotated[int, typer.Option(help="seizures in the year")] = 19_726,
    items: Annotated[int, typer.Option(help="items seized in the year")] = 22_900_000,
    msrp: Annotated[float, typer.Option(help="MSRP value of the year in dollars")] = 2.45e9,
    seed: Annotated[int, typer.Option(help="random seed (the same seed, the same year)")] = 2023,
    database_url: Annotated[
        str | None, typer.Option(help="database (default: the gateway's, from the settings)")
    ] = None,
) -> None:
    """A fiscal year of seizures shaped like CBP's FY2023 figures, bulk-inserted; prints the
    stored totals as JSON."""
    from api.case_sim import insert_year, simulated_agency
    from api.db import make_engine
    from api.migrate import upgrade
    from cases.simulate import YearShape, simulate_year

    if not 2000 <= year <= 2100:
        raise InvalidInput(f"--year {year}: a year from 2000 to 2100")
    if seizures < 1 or items < seizures or msrp <= 0:
        raise InvalidInput("--seizures, --items and --msrp must be positive (items >= seizures)")
    engine = make_engine(database_url or Settings().sqlalchemy_url)
    upgrade(engine)
    started = time.perf_counter()
    shape = YearShape(seizures=seizures, items=items, msrp_cents=round(msrp * 100))
    simulated = simulate_year(year, shape, seed)
    generated = time.perf_counter()
    totals = insert_year(engine, simulated, simulated_agency(engine))
    done = time.perf_counter()
    engine.dispose()
    print(
        json.dumps(
            {
                "year": f"FY{year}",
                **totals,
                "msrp_dollars": round(totals["msrp_cents"] / 100, 2),
                "generate_seconds": round(generated - started, 2),
                "insert_seconds": round(done - generated, 2),
            }
        )
    )
