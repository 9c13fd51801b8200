"""Everything the plan says about scaling and money, in one object for the program and ``make synth``:
per model the autoscaler's bounds and targets, per Capacity Block group its window, the bounds
checks (problems stop the preview, warnings are logged), and the cost with its idle GPUs.

The program raises ``ConfigError(report.problems)`` when there are any, logs ``report.warnings``,
exports ``report.outputs()``; ``make synth`` prints ``report.lines()`` under the plan table and
writes ``report.to_dict()`` into ``plan.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sizing.prices import DEFAULT_PRICES, PriceTable
from stack.autoscaling_checks import check_bounds
from stack.autoscaling_config import AutoscalingConfig, CapacityBlockWindow
from stack.autoscaling_plan import ModelAutoscaling, plan_autoscaling
from stack.capacity_block import CapacityBlockSchedule, capacity_block_schedule
from stack.cost import StackCost, stack_cost
from stack.placement import Placement


@dataclass(frozen=True)
class AutoscalingReport:
    models: tuple[ModelAutoscaling, ...]
    capacity_blocks: tuple[CapacityBlockSchedule, ...]
    cost: StackCost
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        out = []
        if self.models:
            out.append(
                f"{'autoscaled model':<20} {'replicas':>9} {'queue/replica':>13} {'KV target':>9} "
                f"{'load s':>7} {'down after s':>12}"
            )
            for m in self.models:
                out.append(
                    f"{m.model:<20} {f'{m.min_replicas}-{m.max_replicas}':>9} {m.target_queue_length:>13g} "
                    f"{m.target_kv_cache_usage:>9g} {m.startup_s:>7} {m.scale_down_stabilization_s:>12}"
                )
        out.extend(block.describe() for block in self.capacity_blocks)
        out.append(self.cost.table())
        out.extend(f"warning: {w}" for w in self.warnings)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "autoscaling": {m.model: m.to_dict() for m in self.models},
            "capacityBlocks": {b.group: b.to_dict() for b in self.capacity_blocks},
            "cost": self.cost.to_dict(),
            "warnings": list(self.warnings),
        }

    def outputs(self) -> dict[str, Any]:
        """Stack outputs, so the pull-request preview's diff shows what a change costs."""
        return {
            "usdPerHour": {
                "min": round(self.cost.usd_per_hour_min, 2),
                "max": round(self.cost.usd_per_hour_max, 2),
                "models": {
                    m.name: [round(m.usd_per_hour_min, 2), round(m.usd_per_hour_max, 2)] for m in self.cost.models
                },
                "nodeGroups": {
                    g.name: [round(g.usd_per_hour_min, 2), round(g.usd_per_hour_max, 2)] for g in self.cost.node_groups
                },
            },
            "idleGpus": self.cost.idle_gpus_min,
        }


def autoscaling_report(
    placement: Placement,
    *,
    autoscaling: Mapping[str, AutoscalingConfig],
    startup_seconds: Mapping[str, int],
    capacity_blocks: Mapping[str, CapacityBlockWindow] | None = None,
    reservation_instances: Mapping[str, int] | None = None,
    prices: PriceTable = DEFAULT_PRICES,
    now: datetime,
) -> AutoscalingReport:
    """``autoscaling`` and ``startup_seconds`` by model name; ``capacity_blocks`` and
    ``reservation_instances`` by node-group name; ``now`` the preview's time (UTC)."""
    models = tuple(
        plan_autoscaling(m, autoscaling[m.name], startup_seconds[m.name])
        for m in placement.models
        if m.name in autoscaling
    )
    checks = check_bounds(
        placement, autoscaling, startup_seconds=startup_seconds, reservation_instances=reservation_instances
    )
    warnings = list(checks.warnings)
    problems = list(checks.problems)
    blocks = []
    for name, window in (capacity_blocks or {}).items():
        group = next((g for g in placement.node_groups if g.name == name), None)
        if group is None or group.config.capacity_type != "CAPACITY_BLOCK":
            problems.append(f"{name}: a Capacity Block window is given for a group that is not CAPACITY_BLOCK")
            continue
        nodes = min(group.desired_nodes, (reservation_instances or {}).get(name, group.desired_nodes))
        try:
            schedule = capacity_block_schedule(name, window, nodes=nodes, max_nodes=group.config.max_nodes, now=now)
        except ValueError as error:
            problems.append(f"nodeGroups[{group.index}].capacityBlock: {error}")
            continue
        if schedule.warning:
            warnings.append(schedule.warning)
        blocks.append(schedule)
    cost = stack_cost(placement, autoscaling, prices)
    return AutoscalingReport(models, tuple(blocks), cost, tuple(problems), tuple(warnings))
