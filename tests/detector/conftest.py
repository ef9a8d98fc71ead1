from __future__ import annotations

import pytest

from detector.locations import LocationRegistry


@pytest.fixture(scope="session")
def base_registry() -> LocationRegistry:
    return LocationRegistry.default()


@pytest.fixture
def registry(base_registry: LocationRegistry) -> LocationRegistry:
    reg = LocationRegistry()
    reg._by_code = dict(base_registry._by_code)
    return reg
