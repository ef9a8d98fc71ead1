"""The seizure statistics page in a real chromium: an officer of an agency with a hand-built
year sees a chart (canvas drawn by the bundled Chart.js) beside each table, the tables' totals
are the set's, the filters narrow them through htmx, a bad month is a message on the page,
the CSV link answers, no serious axe-core violation; a rights holder's user is kept off;
screenshots at phone and desktop size (docs/screenshots/statistics-*.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.case_sim import insert_year
from tests.api.test_case_statistics import HAND_BUILT
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import Stack


def _foot(page: Any, dimension: str) -> list[str]:
    cells = page.locator(f'table[data-dimension="{dimension}"] tfoot td')
    return [c.strip() for c in cells.all_inner_texts()]


def _body(page: Any, dimension: str) -> dict[str, list[str]]:
    rows = page.locator(f'table[data-dimension="{dimension}"] tbody tr')
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        out[row.locator("th").inner_text().strip()] = [
            c.strip() for c in row.locator("td").all_inner_texts()
        ]
    return out


def _painted(page: Any, dimension: str) -> bool:
    """The chart's canvas really painted: some pixel is the bars' colour."""
    found: bool = page.locator(f"#chart-{dimension}").evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  for (let i = 0; i < d.length; i += 4) {
                    if (d[i] === 19 && d[i + 1] === 41 && d[i + 2] === 75) return true; }
                  return false; }"""
    )
    return found


def test_an_officer_reads_the_year_in_charts_and_tables(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    customs = stack.org("CBP statistics page", "customs")
    insert_year(stack.gateway.engine, HAND_BUILT, customs["id"])
    make_user(stack, customs["apiKey"], "stella@cbp.example", "officer")
    sign_in(page, live, "stella@cbp.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Seizure statistics").click()
    page.wait_for_url(live + "/statistics")
    # the default range: the fiscal year of the latest seizure (FY2023)
    assert page.get_by_label("From (month)").input_value() == "2022-10"
    assert page.get_by_label("To (month, included)").input_value() == "2023-09"
    sections = ("category", "origin", "mode", "right", "outcome", "port", "period")
    for dimension in sections:
        canvas = page.locator(f"#chart-{dimension}")
        canvas.wait_for()
        page.wait_for_function(
            f"document.getElementById('chart-{dimension}').dataset.drawn !== undefined"
        )
        assert canvas.bounding_box()["height"] > 50  # Chart.js drew it a size
        # seizures, lines, quantity, MSRP: 3 seizures, 4 lines, 1,017 items, $12,100
        assert _foot(page, dimension) == ["3", "4", "1,017", "12,100.00"], dimension
    assert page.locator("#chart-category").evaluate("c => c.dataset.drawn") == "2"
    assert _body(page, "category") == {
        "Apparel accessories": ["2", "2", "1,005", "10,100.00"],
        "Watches jewelry": ["2", "2", "12", "2,000.00"],
    }
    assert _body(page, "port")["USLGB"] == ["1", "1", "1,000", "10,000.00"]
    assert _painted(page, "category")
    no_axe_violations(page)
    shoot(page, shots, "statistics")
    # the CSV download the page links to
    href = page.get_by_role("link", name="Download every dimension (CSV)").get_attribute("href")
    csv = page.request.get(live + href)
    assert csv.status == 200 and csv.text().splitlines()[-1].endswith(",3,4,1017,12100.00")
    # narrowed to March 2023 by one dimension, through htmx (no page load)
    page.get_by_label("By", exact=True).select_option("mode")
    page.get_by_label("From (month)").fill("2023-03")
    page.get_by_label("To (month, included)").fill("2023-03")
    page.get_by_role("button", name="Show").click()
    page.wait_for_function("document.querySelectorAll('table[data-dimension]').length === 1")
    page.wait_for_function(
        "document.querySelector('table[data-dimension=\"mode\"] tfoot td').innerText === '2'"
    )
    assert _foot(page, "mode") == ["2", "3", "17", "2,100.00"]
    assert _body(page, "mode") == {
        "Express": ["1", "2", "15", "1,100.00"],
        "Mail": ["1", "1", "2", "1,000.00"],
    }
    assert "from=2023-03" in page.url and "by=mode" in page.url
    page.wait_for_function("document.getElementById('chart-mode').dataset.drawn === '2'")
    no_axe_violations(page)
    assert _painted(page, "mode")  # drawn after the swap, not blank
    shoot(page, shots, "statistics-filtered")
    # a bad range: a message on the page, not a trace
    page.goto(live + "/statistics?from=2023-13&to=2023-03")
    assert "YYYY-MM" in page.get_by_role("alert").inner_text()
    page.goto(live + "/statistics?from=2023-05&to=2023-03")
    assert "comes after" in page.get_by_role("alert").inner_text()
    no_axe_violations(page)


def test_a_rights_holders_user_is_kept_off(stack: Stack, live: str, page: Any) -> None:
    holder = stack.org("Brand, statistics page", "rights_holder")
    make_user(stack, holder["apiKey"], "hana@brand.example", "analyst")
    sign_in(page, live, "hana@brand.example")
    page.wait_for_url(live + "/")
    assert page.get_by_role("link", name="Seizure statistics").count() == 0
    response = page.goto(live + "/statistics")
    assert response.status == 403
