"""A model with ``traffic``: its layout and replica bounds from the throughput prediction.

``stack.placement`` asks ``plan_traffic`` instead of the memory planner's first fit when a model
gives ``traffic``. Every layout the model's node groups, engine and fixed TP/PP allow is weighed
(``sizing.traffic``) at the groups' prices (the capacity type of the first group of each instance
type, with the stack's price overrides) and within their maxNodes; the cheapest that meets the
target wins. ``with_bounds`` then writes the replicas into the model's config: the fixed count
without ``autoscaling``, else the autoscaler's minReplicas/maxReplicas where not given, and a
given bound that cannot serve the target is an error naming the bound the target needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sizing.accounting import Accounting
from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.plan import Plan
from sizing.planner import fitting_plans
from sizing.prices import DEFAULT_PRICES
from sizing.settings import ServingSettings
from sizing.traffic import TrafficPlan, plan_for_traffic
from stack.config import ConfigError, ModelConfig, NodeGroupConfig, StackConfig


def plan_traffic(
    index: int,
    model: ModelConfig,
    architecture: ModelArchitecture,
    settings: ServingSettings,
    accounting: Accounting,
    groups: Sequence[NodeGroupConfig],
    config: StackConfig,
    *,
    engine_tensor_parallel_sizes: list[int] | None,
    pipeline_parallel_size: int | None,
) -> TrafficPlan:
    path = f"models[{index}]"
    assert model.traffic is not None
    target = model.traffic.target()
    instance_types = list(dict.fromkeys(group.instance.name for group in groups))
    prices = DEFAULT_PRICES.with_overrides(config.prices.usd_per_hour, config.prices.capacity_block_usd_per_hour)
    node_usd_per_hour, max_gpus = {}, {}
    for group in groups:
        name = group.instance.name
        node_usd_per_hour.setdefault(name, prices.hourly(name, group.capacity_type).usd_per_hour)
        max_gpus[name] = max_gpus.get(name, 0) + group.max_nodes * group.instance.gpus_per_node
    try:
        plans, attempts = fitting_plans(
            architecture,
            settings,
            instance_types=instance_types,
            min_concurrency=model.min_concurrency,
            tensor_parallel_size=model.tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            accounting=accounting,
        )
        traffic = plan_for_traffic(
            architecture,
            plans,
            target,
            node_usd_per_hour=node_usd_per_hour,
            max_gpus=max_gpus,
            limit=lambda plan: _layout_limit(plan, model, engine_tensor_parallel_sizes),
            attempts=attempts,
        )
    except SizingError as error:
        raise ConfigError([f"{path}.traffic ({model.name}): {error}"]) from None
    return replace(traffic, notes=_notes(model, traffic))


def _notes(model: ModelConfig, traffic: TrafficPlan) -> tuple[str, ...]:
    notes = []
    if model.engine.type != "vllm":
        notes.append(
            f"engine {model.engine.type}: predicted with vLLM's scheduler and step costs; "
            f"{model.engine.display_name} may run another backend for its profile"
        )
    replicas = traffic.max_replicas
    if model.rollout == "noSurge":
        if replicas > 1:
            kept = (replicas - 1) * traffic.capacity.requests_per_s
            notes.append(
                f"rollout noSurge: an update at the peak serves with {replicas - 1} of {replicas} replicas "
                f"({kept:.1f} of {traffic.target.requests_per_s:g} requests/s within the p95 targets); "
                "rollout: surge starts the new replica first"
            )
        else:
            notes.append(
                "rollout noSurge with one replica: an update stops it before its successor is ready; "
                "rollout: surge starts the new replica first"
            )
    return tuple(notes)


def _layout_limit(plan: Plan, model: ModelConfig, engine_tensor_parallel_sizes: list[int] | None) -> str | None:
    engine = model.engine
    if engine_tensor_parallel_sizes is not None and plan.tensor_parallel_size not in engine_tensor_parallel_sizes:
        return f"{engine.display_name} offers TP {engine_tensor_parallel_sizes} only"
    if plan.pods > 1 and engine.single_node_only:
        return f"{engine.display_name} is served on one node"
    if plan.pods > 1 and plan.gpus_per_pod != plan.tensor_parallel_size:
        return "pipeline stages span whole nodes"
    return None


def with_bounds(index: int, model: ModelConfig, traffic: TrafficPlan) -> ModelConfig:
    """The model's config with the replicas the traffic plan needs written in."""
    path = f"models[{index}]"
    need_max, need_min = traffic.max_replicas, traffic.min_replicas
    auto = model.autoscaling
    if auto is None:
        return model.model_copy(update={"replicas": need_max})
    per_replica = traffic.capacity.requests_per_s
    layout = traffic.chosen.layout
    problems = []
    assert model.traffic is not None
    if auto.max_replicas is not None and auto.max_replicas < need_max:
        problems.append(
            f"{path}.autoscaling.maxReplicas: {auto.max_replicas} cannot serve traffic.requestsPerSecond "
            f"{model.traffic.requests_per_second:g}: each {layout} replica takes {per_replica:.2f} requests/s within "
            f"the p95 targets, so it needs {need_max}; raise maxReplicas to {need_max} or remove it to derive it"
        )
    if auto.min_replicas is not None and model.traffic.min_requests_per_second and auto.min_replicas < need_min:
        problems.append(
            f"{path}.autoscaling.minReplicas: {auto.min_replicas} cannot serve traffic.minRequestsPerSecond "
            f"{model.traffic.min_requests_per_second:g} ({per_replica:.2f} requests/s per {layout} replica): "
            f"give at least {need_min}, or remove it to derive it"
        )
    low = auto.min_replicas if auto.min_replicas is not None else (0 if auto.scale_to_zero else need_min)
    # A floor kept for availability above what the peak needs raises the ceiling with it.
    high = auto.max_replicas if auto.max_replicas is not None else max(need_max, low)
    if problems:
        raise ConfigError(problems)
    bounds = auto.model_copy(update={"min_replicas": low, "max_replicas": high})
    return model.model_copy(update={"autoscaling": bounds, "replicas": max(low, 1)})
