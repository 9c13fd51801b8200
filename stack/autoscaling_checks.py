"""Preview-time checks of the autoscaling bounds against the node groups, with the numbers.

At ``maxReplicas`` every model of a group must still fit the group's ``maxNodes`` and, where the
group launches into a capacity reservation or Capacity Block, the reservation's instance count:
an autoscaler asking for more only leaves pods Pending (the launch template targets that
reservation, so EC2 has nowhere else to put them). ``minReplicas <= maxReplicas`` is checked by
the config itself. Scaling to zero is allowed only where asked (``scaleToZero``, see
``stack.autoscaling_config``) and always warned about, with the cold start it costs: a node
(when the group is at zero too) and the server's load, from the plan's startup estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stack.autoscaling_config import AutoscalingConfig
from stack.autoscaling_plan import replica_bounds
from stack.cost import pack_free
from stack.placement import ModelPlacement, Placement

# EC2 capacity for a p4/p5 node: launch, boot, join, pull the GPU drivers' DaemonSets (indicative).
NODE_READY_SECONDS = 300


@dataclass(frozen=True)
class BoundsReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def nodes_at(models: list[ModelPlacement], replicas: Mapping[str, int], gpus_per_node: int) -> int:
    whole = sum(m.plan.nodes * replicas[m.name] for m in models if m.multi_node)
    pods = [m.plan.gpus_per_pod for m in models if not m.multi_node for _ in range(m.plan.pods * replicas[m.name])]
    return whole + len(pack_free(pods, gpus_per_node))


def _demand(models: list[ModelPlacement], replicas: Mapping[str, int]) -> str:
    parts = []
    for m in models:
        if m.multi_node:
            parts.append(f"{m.name} {replicas[m.name]} x {m.plan.nodes} nodes")
        else:
            parts.append(f"{m.name} {replicas[m.name]} x {m.plan.gpus_per_pod} GPUs")
    return ", ".join(parts)


def check_bounds(
    placement: Placement,
    autoscaling: Mapping[str, AutoscalingConfig],
    *,
    startup_seconds: Mapping[str, int],
    reservation_instances: Mapping[str, int] | None = None,
) -> BoundsReport:
    """``autoscaling`` maps model names to their bounds; ``startup_seconds`` model names to the
    server's load time; ``reservation_instances`` node-group names to the instance count of the
    reservation or Capacity Block they launch into (from the config or the reservation)."""
    report = BoundsReport()
    reservation_instances = reservation_instances or {}
    high = {m.name: replica_bounds(m, autoscaling.get(m.name))[1] for m in placement.models}
    for group in placement.node_groups:
        placed = [m for m in placement.models if m.node_group == group.name]
        if not placed:
            continue
        need = nodes_at(placed, high, group.instance.gpus_per_node)
        path = f"nodeGroups[{group.index}]"
        at_max = f"at maxReplicas {_demand(placed, high)} need {need} {group.instance.name} nodes"
        if need > group.config.max_nodes:
            report.problems.append(
                f"{path}.maxNodes: {group.config.max_nodes} is too small: {at_max} "
                f"({group.instance.gpus_per_node} GPUs each); raise maxNodes to at least {need} or lower maxReplicas"
            )
        reserved = reservation_instances.get(group.name)
        if reserved is not None and need > reserved:
            report.problems.append(
                f"{path}.capacityReservationId: {group.config.capacity_reservation_id} holds {reserved} instances but "
                f"{at_max}; the launch template targets that reservation, so the rest would stay Pending: lower "
                f"maxReplicas or reserve at least {need}"
            )
    for model in placement.models:
        bounds = autoscaling.get(model.name)
        if bounds is None or not bounds.scale_to_zero:
            continue
        group = placement.node_group(model.node_group)
        load = startup_seconds[model.name]
        node = NODE_READY_SECONDS if group.config.min_nodes == 0 else 0
        report.warnings.append(
            f"models[{model.index}] ({model.name}) scales to zero: the first request after an idle period waits "
            f"about {load + node} s ({load} s server load from the plan"
            + (f" + ~{node} s for a {group.instance.name} node, as {group.name} has minNodes 0" if node else "")
            + "); keep minReplicas: 1 if callers cannot wait that long"
        )
    return report
