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
from stack.placement import ModelPlacement, Placement


@dataclass(frozen=True)
class AutoscalingReport:
    models: tuple[ModelAutoscaling, ...]
    capacity_blocks: tuple[CapacityBlockSchedule, ...]
    cost: StackCost
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        return report_lines(self.to_dict())

    def model(self, name: str) -> ModelAutoscaling | None:
        return next((m for m in self.models if m.model == name), None)

    def capacity_block(self, group: str) -> CapacityBlockSchedule | None:
        return next((b for b in self.capacity_blocks if b.group == group), None)

    def created_replicas(self, model: ModelPlacement) -> int:
        """What the workload is created with: none while its group's Capacity Block is not running
        (no node could take a server, and ``pulumi up`` would wait for one until it times out),
        else the autoscaler's floor (at least one) or the fixed count."""
        block = self.capacity_block(model.node_group)
        if block is not None and not block.serving:
            return 0
        auto = self.model(model.name)
        return model.config.replicas if auto is None else auto.initial_replicas

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
    cost = stack_cost(placement, autoscaling, prices, reservation_instances)
    return AutoscalingReport(models, tuple(blocks), cost, tuple(problems), tuple(warnings))


def stack_report(placement: Placement, *, startup_seconds: Mapping[str, int], now: datetime) -> AutoscalingReport:
    """The report of the stack's own config: each model's ``autoscaling``, each group's
    ``capacityBlock`` and ``reservedInstances``, the ``prices`` overrides."""
    config = placement.config
    groups = placement.node_groups
    return autoscaling_report(
        placement,
        autoscaling={m.name: m.config.autoscaling for m in placement.models if m.config.autoscaling is not None},
        startup_seconds=startup_seconds,
        capacity_blocks={g.name: g.config.capacity_block for g in groups if g.config.capacity_block is not None},
        reservation_instances={
            g.name: g.config.reserved_instances for g in groups if g.config.reserved_instances is not None
        },
        prices=DEFAULT_PRICES.with_overrides(config.prices.usd_per_hour, config.prices.capacity_block_usd_per_hour),
        now=now,
    )


def _pair(values: list[float]) -> tuple[str, str]:
    low, high = values
    return f"{low:.2f}", f"{high:.2f}"


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as ``make synth`` prints it, from ``AutoscalingReport.to_dict()`` (what plan.json holds)."""
    out = []
    models = report["autoscaling"]
    if models:
        out.append("Autoscaling (KEDA on vLLM's waiting requests, KV-cache usage and, with traffic, running requests):")
        out.append(
            f"  {'model':<20} {'replicas':>9} {'queue/replica':>13} {'KV target':>9} {'running/replica':>15} "
            f"{'load s':>7} {'down after s':>12}"
        )
        for name, m in models.items():
            replicas = f"{m['minReplicas']}-{m['maxReplicas']}"
            running = f"{m['targetRunningRequests']:g}" if m.get("targetRunningRequests") else "-"
            out.append(
                f"  {name:<20} {replicas:>9} {m['targetQueueLength']:>13g} {m['targetKvCacheUsage']:>9g} "
                f"{running:>15} {m['startupSeconds']:>7} {m['scaleDownStabilizationSeconds']:>12}"
            )
    for block in report["capacityBlocks"].values():
        out.append(block["summary"])
    cost = report["cost"]
    out.append("Cost ($/hour, indicative; at min and max replicas):")
    out.append(f"  {'model':<20} {'node group':<16} {'replicas':>8} {'$/replica':>10} {'$/h min':>10} {'$/h max':>10}")
    for m in cost["models"]:
        low, high = _pair(m["usdPerHour"])
        replicas = f"{m['replicas'][0]}-{m['replicas'][1]}"
        out.append(
            f"  {m['name']:<20} {m['nodeGroup']:<16} {replicas:>8} {m['usdPerReplicaHour']:>10.2f} {low:>10} {high:>10}"
        )
    out.append(f"  {'node group':<20} {'instance':<16} {'nodes':>8} {'idle GPUs':>10} {'$/h min':>10} {'$/h max':>10}")
    for g in cost["nodeGroups"]:
        low, high = _pair(g["usdPerHour"])
        nodes = f"{g['nodes'][0]}-{g['nodes'][1]}"
        idle = f"{g['idleGpus'][0]}-{g['idleGpus'][1]}"
        out.append(f"  {g['name']:<20} {g['instanceType']:<16} {nodes:>8} {idle:>10} {low:>10} {high:>10}")
    low, high = _pair(cost["usdPerHour"])
    out.append(f"  {'stack':<20} {'':<16} {'':>8} {cost['idleGpus']:>10} {low:>10} {high:>10}")
    for g in cost["nodeGroups"]:
        out.extend(f"  {g['name']}: {s}" for s in g["suggestions"])
    out.extend(f"  note: {n}" for n in cost["notes"])
    for price in sorted({g["price"] for g in cost["nodeGroups"]}):
        out.append(f"  price: {price}")
    out.extend(f"warning: {w}" for w in report["warnings"])
    return out
