from __future__ import annotations

import pytest

from sizing.errors import SizingError
from sizing.instances import INSTANCES
from sizing.prices import DEFAULT_PRICES, ON_DEMAND, PriceTable


def test_every_catalog_instance_has_an_on_demand_price_with_its_provenance():
    assert set(ON_DEMAND) == set(INSTANCES)
    for price in ON_DEMAND.values():
        assert price.region and price.as_of and price.source.startswith("https://")


def test_capacity_block_rate_where_listed_else_on_demand():
    assert DEFAULT_PRICES.hourly("p5.48xlarge", "CAPACITY_BLOCK").purchase == "capacity-block"
    assert DEFAULT_PRICES.hourly("p5e.48xlarge", "CAPACITY_BLOCK").purchase == "on-demand"
    assert DEFAULT_PRICES.hourly("p5.48xlarge", "SPOT") == ON_DEMAND["p5.48xlarge"]


def test_override_and_unknown_type():
    table = PriceTable().with_overrides(usd_per_hour={"p4d.24xlarge": 10.0})
    assert table.hourly("p4d.24xlarge").usd_per_hour == 10.0
    assert "stack config" in table.hourly("p4d.24xlarge").source
    with pytest.raises(SizingError, match="prices.usdPerHour"):
        table.hourly("p9.huge")
    with pytest.raises(SizingError, match="RESERVED"):
        table.hourly("p5.48xlarge", "RESERVED")
