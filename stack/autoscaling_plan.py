"""What the pod autoscaler is told for one model, derived from its plan and its load time.

Two signals, both vLLM's own (CPU or GPU utilization says nothing about an LLM server's load: a
server at full KV cache and a long queue can show the same GPU utilization as a half-idle one):

- requests waiting (``vllm:num_requests_waiting``) per replica. The default target is a quarter
  of what one replica serves at once: the scheduler's cap (``max_num_seqs``) or, when lower, the
  requests of ``maxModelLen`` tokens its KV cache holds (the plan's ``max_concurrency``). A queue
  that long means the next arrivals wait about a quarter of a batch for a slot.
- KV-cache usage (``vllm:kv_cache_usage_perc``, 0-1) averaged over replicas, default 0.8: above
  it vLLM starts preempting sequences, which costs more than a queue.
- with a ``traffic`` target, requests running (``vllm:num_requests_running``) per replica, at the
  mean in flight one replica holds at its share of the peak (``sizing.traffic``, where the p95
  latencies were checked request by request): at the peak that asks for maxReplicas; below
  ``max_num_seqs`` vLLM admits every request, so no queue forms while the latencies already
  exceed the target, and only the running count shows it.

A replica takes ``startup_s`` to become ready (image pull, weights load, CUDA graphs). Scaling up
is limited to doubling (at least one replica) per load time, so replicas still loading are not
counted as missing capacity again and again; scaling down waits twice the load time of low load
before it removes one replica per load time, so a dip shorter than a reload never costs one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stack.autoscaling_config import (
    HPA_MAX_POLICY_PERIOD_SECONDS,
    HPA_MAX_STABILIZATION_SECONDS,
    AutoscalingConfig,
)
from stack.placement import ModelPlacement

DEFAULT_QUEUE_FRACTION = 0.25
DEFAULT_KV_CACHE_USAGE = 0.8
SCALE_UP_STABILIZATION_SECONDS = 60  # ignore a burst shorter than a minute
MIN_SCALE_DOWN_STABILIZATION_SECONDS = 600


@dataclass(frozen=True)
class ModelAutoscaling:
    model: str
    min_replicas: int
    max_replicas: int
    initial_replicas: int  # what the workload is created with; the autoscaler owns it after
    concurrency_per_replica: int
    target_queue_length: float
    queue_target_from_plan: bool
    target_kv_cache_usage: float
    target_running_requests: float | None  # per replica, from the traffic target
    startup_s: int
    scale_up_period_s: int
    scale_down_stabilization_s: int
    scale_down_period_s: int
    polling_interval_s: int
    scale_to_zero: bool
    activation_query: str | None
    activation_threshold: float

    def to_dict(self) -> dict:
        return {
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "concurrencyPerReplica": self.concurrency_per_replica,
            "targetQueueLength": self.target_queue_length,
            "targetQueueLengthFrom": "plan" if self.queue_target_from_plan else "config",
            "targetKvCacheUsage": self.target_kv_cache_usage,
            **({"targetRunningRequests": self.target_running_requests} if self.target_running_requests else {}),
            "startupSeconds": self.startup_s,
            "scaleUpPeriodSeconds": self.scale_up_period_s,
            "scaleDownStabilizationSeconds": self.scale_down_stabilization_s,
            "scaleToZero": self.scale_to_zero,
        }


def concurrency_per_replica(model: ModelPlacement) -> int:
    """Requests one replica serves at once: the scheduler's cap, or fewer if the KV cache holds
    fewer requests of maxModelLen tokens."""
    plan = model.plan
    seqs = plan.settings.max_num_seqs or 1
    return max(1, min(seqs, math.floor(plan.estimate.max_concurrency)))


def plan_autoscaling(model: ModelPlacement, config: AutoscalingConfig, startup_s: int) -> ModelAutoscaling:
    """``startup_s``: seconds from pod start to ready (the server's startup budget)."""
    if startup_s <= 0:
        raise ValueError(f"{model.name}: startup seconds must be positive, got {startup_s}")
    low, high = replica_bounds(model, config)
    concurrency = concurrency_per_replica(model)
    from_plan = config.target_queue_length is None
    queue = float(max(1, math.ceil(concurrency * DEFAULT_QUEUE_FRACTION))) if from_plan else config.target_queue_length
    assert queue is not None
    running = None
    if model.traffic is not None:
        running = max(1.0, round(model.traffic.simulated.mean_in_flight, 2))
    period = min(startup_s, HPA_MAX_POLICY_PERIOD_SECONDS)
    down = config.scale_down_stabilization_seconds
    if down is None:
        down = min(max(2 * startup_s, MIN_SCALE_DOWN_STABILIZATION_SECONDS), HPA_MAX_STABILIZATION_SECONDS)
    return ModelAutoscaling(
        model=model.name,
        min_replicas=low,
        max_replicas=high,
        initial_replicas=max(low, 1),
        concurrency_per_replica=concurrency,
        target_queue_length=queue,
        queue_target_from_plan=from_plan,
        target_kv_cache_usage=config.target_kv_cache_usage or DEFAULT_KV_CACHE_USAGE,
        target_running_requests=running,
        startup_s=startup_s,
        scale_up_period_s=period,
        scale_down_stabilization_s=down,
        scale_down_period_s=period,
        polling_interval_s=config.polling_interval_seconds,
        scale_to_zero=config.scale_to_zero,
        activation_query=config.activation_query,
        activation_threshold=config.activation_threshold,
    )


def replica_bounds(model: ModelPlacement, config: AutoscalingConfig | None) -> tuple[int, int]:
    """(min, max) replicas: the autoscaler's bounds, or the fixed count twice."""
    if config is None:
        return model.config.replicas, model.config.replicas
    assert config.min_replicas is not None and config.max_replicas is not None, "set by stack.placement"
    return config.min_replicas, config.max_replicas
