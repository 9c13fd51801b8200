"""What the plan costs per hour, and the GPUs it pays for without using.

A model's replica costs its share of the node by GPUs (a TP=2 pod on an 8-GPU p5 is a quarter of
the node's price), or its whole nodes when it spans nodes. A node group costs its nodes: the
pods packed as ``stack.placement`` packs them (first-fit decreasing by GPUs), at least
``minNodes``, at the minimum and at the maximum replicas. GPUs on those nodes that no pod
requests are idle: money spent on nothing, with what would use them or a cheaper layout.

Prices come from ``sizing.prices`` (region, date and source in each figure); a group's
capacity type picks the on-demand or the Capacity Block rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sizing.instances import INSTANCES, InstanceType
from sizing.prices import DEFAULT_PRICES, Price, PriceTable, replica_usd_per_hour
from stack.autoscaling_config import AutoscalingConfig
from stack.autoscaling_plan import replica_bounds
from stack.placement import ModelPlacement, NodeGroupPlacement, Placement, pack_free

Bounds = Mapping[str, AutoscalingConfig]


@dataclass(frozen=True)
class ModelCost:
    name: str
    node_group: str
    instance_type: str
    gpus_per_replica: int
    min_replicas: int
    max_replicas: int
    usd_per_replica_hour: float
    price: Price

    @property
    def usd_per_hour_min(self) -> float:
        return self.usd_per_replica_hour * self.min_replicas

    @property
    def usd_per_hour_max(self) -> float:
        return self.usd_per_replica_hour * self.max_replicas

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodeGroup": self.node_group,
            "gpusPerReplica": self.gpus_per_replica,
            "replicas": [self.min_replicas, self.max_replicas],
            "usdPerReplicaHour": round(self.usd_per_replica_hour, 2),
            "usdPerHour": [round(self.usd_per_hour_min, 2), round(self.usd_per_hour_max, 2)],
            "price": self.price.describe(),
        }


@dataclass(frozen=True)
class NodeGroupCost:
    name: str
    instance_type: str
    gpus_per_node: int
    nodes_min: int
    nodes_max: int
    gpus_used_min: int
    gpus_used_max: int
    price: Price
    suggestions: tuple[str, ...] = ()
    reserved_instances: int = 0  # a reservation or Capacity Block bills all of them, launched or not

    @property
    def usd_per_hour_min(self) -> float:
        return max(self.nodes_min, self.reserved_instances) * self.price.usd_per_hour

    @property
    def usd_per_hour_max(self) -> float:
        return max(self.nodes_max, self.reserved_instances) * self.price.usd_per_hour

    @property
    def idle_gpus_min(self) -> int:
        return self.nodes_min * self.gpus_per_node - self.gpus_used_min

    @property
    def idle_gpus_max(self) -> int:
        return self.nodes_max * self.gpus_per_node - self.gpus_used_max

    @property
    def idle_usd_per_hour_min(self) -> float:
        return self.idle_gpus_min * self.price.usd_per_hour / self.gpus_per_node

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instanceType": self.instance_type,
            "nodes": [self.nodes_min, self.nodes_max],
            "usdPerHour": [round(self.usd_per_hour_min, 2), round(self.usd_per_hour_max, 2)],
            "idleGpus": [self.idle_gpus_min, self.idle_gpus_max],
            "idleUsdPerHour": round(self.idle_usd_per_hour_min, 2),
            "reservedInstances": self.reserved_instances,
            "price": self.price.describe(),
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True)
class StackCost:
    models: tuple[ModelCost, ...]
    node_groups: tuple[NodeGroupCost, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def usd_per_hour_min(self) -> float:
        return sum(g.usd_per_hour_min for g in self.node_groups)

    @property
    def usd_per_hour_max(self) -> float:
        return sum(g.usd_per_hour_max for g in self.node_groups)

    @property
    def idle_gpus_min(self) -> int:
        return sum(g.idle_gpus_min for g in self.node_groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "usdPerHour": [round(self.usd_per_hour_min, 2), round(self.usd_per_hour_max, 2)],
            "idleGpus": self.idle_gpus_min,
            "models": [m.to_dict() for m in self.models],
            "nodeGroups": [g.to_dict() for g in self.node_groups],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """Lines for the plan table of ``make synth``."""
        lines = [f"{'node group':<20} {'instance':<15} {'nodes':>7} {'$/h min':>10} {'$/h max':>10} {'idle GPUs':>9}"]
        for g in self.node_groups:
            lines.append(
                f"{g.name:<20} {g.instance_type:<15} {f'{g.nodes_min}-{g.nodes_max}':>7} "
                f"{g.usd_per_hour_min:>10.2f} {g.usd_per_hour_max:>10.2f} {g.idle_gpus_min:>9}"
            )
        lines.append(
            f"{'stack':<20} {'':<15} {'':>7} {self.usd_per_hour_min:>10.2f} {self.usd_per_hour_max:>10.2f} "
            f"{self.idle_gpus_min:>9}"
        )
        for g in self.node_groups:
            lines.extend(f"  {g.name}: {s}" for s in g.suggestions)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _price(group: NodeGroupPlacement, prices: PriceTable) -> Price:
    return prices.hourly(group.instance.name, group.config.capacity_type)


def model_cost(
    model: ModelPlacement, group: NodeGroupPlacement, bounds: AutoscalingConfig | None, prices: PriceTable
) -> ModelCost:
    price = _price(group, prices)
    plan = model.plan
    per_replica = replica_usd_per_hour(
        pods=plan.pods,
        gpus_per_pod=plan.gpus_per_pod,
        gpus_per_node=group.instance.gpus_per_node,
        node_usd_per_hour=price.usd_per_hour,
    )
    low, high = replica_bounds(model, bounds)
    return ModelCost(model.name, group.name, group.instance.name, plan.gpus, low, high, per_replica, price)


def _layout(
    models: list[ModelPlacement], replicas: Mapping[str, int], instance: InstanceType
) -> tuple[int, int, list[int]]:
    """(nodes, GPUs requested, free GPUs per single-node-packed node) for the given replicas."""
    whole = sum(m.plan.nodes * replicas[m.name] for m in models if m.multi_node)
    pods = [m.plan.gpus_per_pod for m in models if not m.multi_node for _ in range(m.plan.pods * replicas[m.name])]
    free = pack_free(pods, instance.gpus_per_node)
    used = sum(pods) + sum(m.plan.gpus * replicas[m.name] for m in models if m.multi_node)
    return whole + len(free), used, free


def _suggestions(
    group: NodeGroupPlacement,
    models: list[ModelPlacement],
    replicas: Mapping[str, int],
    placement: Placement,
    all_replicas: Mapping[str, int],
    prices: PriceTable,
) -> list[str]:
    instance = group.instance
    nodes, _, free = _layout(models, replicas, instance)
    out = []
    idle = sum(free) + max(0, group.config.min_nodes - nodes) * instance.gpus_per_node
    if not idle:
        return out
    price = _price(group, prices)
    if group.config.min_nodes > nodes:
        extra = group.config.min_nodes - nodes
        out.append(
            f"minNodes {group.config.min_nodes} keeps {extra} node(s) with no server "
            f"(${extra * price.usd_per_hour:.2f}/h): lower minNodes to {nodes}"
        )
    for m in models:
        if m.multi_node:
            continue
        fit = sum(room // m.plan.gpus_per_pod for room in free)
        if fit:
            out.append(
                f"{fit} more replica(s) of {m.name} ({m.plan.gpus_per_pod} GPUs each) fit the idle GPUs at no extra "
                "node cost"
            )
    for other in placement.node_groups:
        if other.name == group.name or other.instance.name != instance.name:
            continue
        if other.config.capacity_type != group.config.capacity_type:
            continue
        theirs = [m for m in placement.models if m.node_group == other.name]
        for m in theirs:
            if m.multi_node:
                continue
            pods = [m.plan.gpus_per_pod] * (m.plan.pods * all_replicas[m.name])
            merged_nodes, _, _ = _layout(models + [m], {**replicas, m.name: all_replicas[m.name]}, instance)
            rest = [x for x in theirs if x.name != m.name]
            their_nodes = max(_layout(theirs, all_replicas, instance)[0], other.config.min_nodes)
            rest_nodes = max(_layout(rest, all_replicas, instance)[0], other.config.min_nodes)
            saved = (their_nodes - rest_nodes) - (merged_nodes - nodes)
            if pods and saved > 0:
                out.append(
                    f"moving {m.name} ({len(pods)} x {m.plan.gpus_per_pod} GPUs) from {other.name} into the idle GPUs "
                    f"saves {saved} node(s), ${saved * price.usd_per_hour:.2f}/h (set its nodeGroup: {group.name})"
                )
    largest = max((m.plan.gpus_per_pod for m in models), default=0)
    smaller = [
        it
        for it in INSTANCES.values()
        if it.gpu_name == instance.gpu_name and largest <= it.gpus_per_node < instance.gpus_per_node
    ]
    for it in sorted(smaller, key=lambda it: it.on_demand_usd_per_hour):
        pods = [m.plan.gpus_per_pod for m in models if not m.multi_node for _ in range(m.plan.pods * replicas[m.name])]
        needed = len(pack_free(pods, it.gpus_per_node))
        cost = needed * prices.hourly(it.name, group.config.capacity_type).usd_per_hour
        if cost < nodes * price.usd_per_hour:
            out.append(
                f"{needed} x {it.name} would hold the same pods for ${cost:.2f}/h "
                f"instead of ${nodes * price.usd_per_hour:.2f}/h"
            )
            break
    return out


def stack_cost(
    placement: Placement,
    autoscaling: Bounds | None = None,
    prices: PriceTable = DEFAULT_PRICES,
    reservation_instances: Mapping[str, int] | None = None,
) -> StackCost:
    """$/hour per model, per node group and for the stack, at the minimum and maximum replicas,
    and the idle GPUs; ``autoscaling`` maps model names to their bounds (others keep ``replicas``);
    ``reservation_instances`` node-group names to the instances their reservation bills."""
    autoscaling = autoscaling or {}
    reserved = reservation_instances or {}
    low = {m.name: replica_bounds(m, autoscaling.get(m.name))[0] for m in placement.models}
    high = {m.name: replica_bounds(m, autoscaling.get(m.name))[1] for m in placement.models}
    models = tuple(
        model_cost(m, placement.node_group(m.node_group), autoscaling.get(m.name), prices) for m in placement.models
    )
    groups = []
    for group in placement.node_groups:
        placed = [m for m in placement.models if m.node_group == group.name]
        nodes_min, used_min, _ = _layout(placed, low, group.instance)
        nodes_max, used_max, _ = _layout(placed, high, group.instance)
        groups.append(
            NodeGroupCost(
                name=group.name,
                instance_type=group.instance.name,
                gpus_per_node=group.instance.gpus_per_node,
                nodes_min=max(nodes_min, group.config.min_nodes),
                nodes_max=max(nodes_max, group.config.min_nodes),
                gpus_used_min=used_min,
                gpus_used_max=used_max,
                price=_price(group, prices),
                suggestions=tuple(_suggestions(group, placed, low, placement, low, prices)),
                reserved_instances=reserved.get(group.name, 0),
            )
        )
    return StackCost(models, tuple(groups), tuple(_price_notes(placement, prices, reserved)))


def _price_notes(placement: Placement, prices: PriceTable, reserved: Mapping[str, int]) -> list[str]:
    notes = []
    for group in placement.node_groups:
        price = _price(group, prices)
        if group.config.capacity_type == "CAPACITY_BLOCK" and price.purchase != "capacity-block":
            notes.append(
                f"{group.name}: no Capacity Block rate for {group.instance.name} in the table; priced at on-demand "
                "(an over-estimate): give what the block cost under prices.capacityBlockUsdPerHour"
            )
        if group.name in reserved:
            count = reserved[group.name]
            notes.append(
                f"{group.name}: {group.config.capacity_reservation_id} bills its {count} reserved instances "
                f"(reservedInstances), launched or not: ${count * price.usd_per_hour:.2f}/h whatever the replicas"
            )
        elif group.config.capacity_reservation_id and group.config.capacity_type == "ON_DEMAND":
            notes.append(
                f"{group.name}: capacity reservation {group.config.capacity_reservation_id} bills every reserved "
                "instance at the on-demand rate, used or not; its instances beyond these nodes are not counted here"
            )
    return notes
