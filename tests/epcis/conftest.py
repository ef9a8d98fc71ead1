"""Fixtures: GS1's EPCIS 2.0 examples, copied byte for byte from ../shared/epcis/examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = sorted(p.name for p in FIXTURES.glob("*.jsonld"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(params=EXAMPLES)
def example(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)
