"""What a GPU instance costs per hour, each figure with its region, date and source.

On-demand: the EC2 on-demand price list for Linux in US East (N. Virginia), after AWS's
P4/P5 price cut of June 2025 (https://aws.amazon.com/ec2/pricing/on-demand/). An On-Demand
Capacity Reservation bills the on-demand rate for every reserved instance, used or not, so a
reserved group costs its whole reservation. Capacity Blocks bill a reservation fee fixed at
purchase (https://aws.amazon.com/ec2/capacityblocks/pricing/, rates in force until
2025-01-01, plus the operating-system fee): the figures below are what that page listed, and
what you paid is the number to give as an override.

Figures are indicative, not a bill: prices move, regions differ, and discounts (Savings Plans,
private pricing) are not modelled. ``PriceTable.with_overrides`` takes the stack's own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sizing.errors import SizingError

ON_DEMAND_SOURCE = "https://aws.amazon.com/ec2/pricing/on-demand/ (Linux, after the June 2025 P4/P5 price cut)"
ON_DEMAND_AS_OF = "2025-06"
CAPACITY_BLOCK_SOURCE = "https://aws.amazon.com/ec2/capacityblocks/pricing/ (effective instance hourly rate)"
CAPACITY_BLOCK_AS_OF = "2024-12 (rates in force until 2025-01-01)"
OVERRIDE_SOURCE = "stack config (prices)"


@dataclass(frozen=True)
class Price:
    instance_type: str
    usd_per_hour: float
    purchase: str  # on-demand, capacity-block
    region: str
    as_of: str
    source: str

    def describe(self) -> str:
        return (
            f"{self.instance_type} {self.purchase} ${self.usd_per_hour:.2f}/h "
            f"({self.region}, {self.as_of}, {self.source})"
        )


def _on_demand(instance_type: str, usd: float) -> Price:
    return Price(instance_type, usd, "on-demand", "us-east-1", ON_DEMAND_AS_OF, ON_DEMAND_SOURCE)


def _capacity_block(instance_type: str, usd: float, region: str) -> Price:
    return Price(instance_type, usd, "capacity-block", region, CAPACITY_BLOCK_AS_OF, CAPACITY_BLOCK_SOURCE)


ON_DEMAND: dict[str, Price] = {
    p.instance_type: p
    for p in (
        _on_demand("p4d.24xlarge", 21.96),
        _on_demand("p4de.24xlarge", 27.45),
        _on_demand("p5.48xlarge", 55.04),
        _on_demand("p5e.48xlarge", 63.30),
        _on_demand("p5en.48xlarge", 63.30),
    )
}

# Only what the Capacity Blocks page listed for these types; a type without a figure here is
# priced at on-demand (an over-estimate) and says so.
CAPACITY_BLOCK: dict[str, Price] = {
    p.instance_type: p
    for p in (
        _capacity_block("p5.48xlarge", 39.33, "us-east-1"),
        _capacity_block("p4d.24xlarge", 14.75, "us-east-2"),
    )
}

CAPACITY_TYPE_PURCHASE = {"ON_DEMAND": "on-demand", "CAPACITY_BLOCK": "capacity-block", "SPOT": "spot"}


@dataclass(frozen=True)
class PriceTable:
    on_demand: dict[str, Price] = field(default_factory=lambda: dict(ON_DEMAND))
    capacity_block: dict[str, Price] = field(default_factory=lambda: dict(CAPACITY_BLOCK))

    def with_overrides(
        self, usd_per_hour: dict[str, float] | None = None, capacity_block_usd_per_hour: dict[str, float] | None = None
    ) -> PriceTable:
        on_demand = dict(self.on_demand)
        blocks = dict(self.capacity_block)
        for name, usd in (usd_per_hour or {}).items():
            on_demand[name] = Price(name, usd, "on-demand", "as configured", "as configured", OVERRIDE_SOURCE)
        for name, usd in (capacity_block_usd_per_hour or {}).items():
            blocks[name] = Price(name, usd, "capacity-block", "as configured", "as configured", OVERRIDE_SOURCE)
        return replace(self, on_demand=on_demand, capacity_block=blocks)

    def hourly(self, instance_type: str, capacity_type: str = "ON_DEMAND") -> Price:
        """The $/hour of one instance bought as ``capacity_type`` (the EKS spelling).

        Spot has no fixed price: it is priced at on-demand, the most it can cost. A Capacity
        Block type without a listed block rate is priced at on-demand too.
        """
        if capacity_type not in CAPACITY_TYPE_PURCHASE:
            raise SizingError(
                f"capacity type {capacity_type!r} is unknown: accepted are {', '.join(CAPACITY_TYPE_PURCHASE)}"
            )
        if capacity_type == "CAPACITY_BLOCK" and instance_type in self.capacity_block:
            return self.capacity_block[instance_type]
        try:
            return self.on_demand[instance_type]
        except KeyError:
            raise SizingError(
                f"no price for instance type {instance_type!r}: priced are {', '.join(sorted(self.on_demand))}; "
                "give one under prices.usdPerHour"
            ) from None


DEFAULT_PRICES = PriceTable()


def replica_usd_per_hour(*, pods: int, gpus_per_pod: int, gpus_per_node: int, node_usd_per_hour: float) -> float:
    """What one replica costs: its share of a node by GPUs (a TP=2 pod is a quarter of an 8-GPU
    node), or its whole nodes when its pipeline stages span nodes (one pod per node)."""
    if pods > 1:
        return pods * node_usd_per_hour
    return node_usd_per_hour * gpus_per_pod / gpus_per_node
