"""How many replicas of which layout serve a traffic target within its p95 latencies, at the lowest $/hour.

A target is a request rate, a request shape (input and output tokens) and p95 bounds on the time
to first token and the time per output token. The throughput model (``sizing.throughput``)
predicts one replica's latencies at a given number of requests in flight; what links that to a
request *rate* is how many requests are in flight when they arrive at random.

vLLM admits every request its caps allow into the running batch at once (no request waits for
another to finish below ``max_num_seqs`` and the KV cache), so below its caps a replica is an
infinite-server queue: with Poisson arrivals at rate λ and mean request latency R, the requests
in flight are Poisson distributed with mean ``m = λ R`` whatever the latency distribution
(M/G/∞), and an arriving request sees that distribution (PASTA). It then runs with ``1 + N``
requests in flight, N ~ Poisson(m). So:

1. ``C*``: the most requests in flight at which the predicted TTFT and TPOT still meet the p95
   targets, no more than the engine runs at once (beyond it requests queue without bound under
   an open arrival stream);
2. ``m*``: the largest mean with ``P(1 + N <= C*) >= 0.95``, so 95% of requests run at a
   concurrency whose latencies meet the targets;
3. one replica's capacity ``λ* = m* / R(1 + m*)``: the fixed point of Little's law at that load;
4. replicas ``ceil(rate / λ*)``, and the layout whose replicas cost least per hour.

Every layout the memory plan starts (``sizing.planner.fitting_plans``) is weighed; a larger TP
serves more per replica but costs more GPUs, so either may win, and every alternative is kept
with its numbers or the reason it was set aside. The mean-field latency the throughput model
predicts stands in for the latency at a given concurrency: spreads within one concurrency level
(a prompt arriving behind another's prefill) are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.instances import INSTANCES
from sizing.plan import Plan
from sizing.planner import Attempt
from sizing.prices import replica_usd_per_hour
from sizing.search import largest_where
from sizing.throughput import RequestShape, ThroughputPrediction, predict_for_plan

PERCENTILE = 0.95


@dataclass(frozen=True)
class TrafficTarget:
    """``requests_per_s`` is the peak to serve within the latencies; ``min_requests_per_s`` the
    trough the autoscaler's floor still serves within them."""

    requests_per_s: float
    input_tokens: int
    output_tokens: int
    p95_ttft_s: float | None = None
    p95_tpot_s: float | None = None
    min_requests_per_s: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("requests_per_s", self.requests_per_s), ("min_requests_per_s", self.min_requests_per_s)):
            if not 0 <= value < float("inf"):
                raise SizingError(f"{name} {value!r} is invalid: give a finite rate >= 0")
        if self.requests_per_s <= 0:
            raise SizingError(f"requests_per_s {self.requests_per_s!r} is invalid: give a rate > 0")
        if self.min_requests_per_s > self.requests_per_s:
            raise SizingError(
                f"min_requests_per_s {self.min_requests_per_s:g} is above requests_per_s {self.requests_per_s:g}: "
                "the trough cannot exceed the peak"
            )
        for name, value in (("p95_ttft_s", self.p95_ttft_s), ("p95_tpot_s", self.p95_tpot_s)):
            if value is not None and not 0 < value < float("inf"):
                raise SizingError(f"{name} {value!r} is invalid: give a finite number of seconds > 0")

    @property
    def shape(self) -> RequestShape:
        return RequestShape(self.input_tokens, self.output_tokens)

    def met_by(self, prediction: ThroughputPrediction) -> bool:
        return (self.p95_ttft_s is None or prediction.ttft_s <= self.p95_ttft_s) and (
            self.p95_tpot_s is None or prediction.tpot_s <= self.p95_tpot_s
        )

    def miss(self, prediction: ThroughputPrediction) -> float:
        """How far a prediction is from the targets: the larger ratio of predicted to target (1 = on it)."""
        ratios = [1.0]
        if self.p95_ttft_s is not None:
            ratios.append(prediction.ttft_s / self.p95_ttft_s)
        if self.p95_tpot_s is not None:
            ratios.append(prediction.tpot_s / self.p95_tpot_s)
        return max(ratios)


def poisson_quantile(mean: float, probability: float = PERCENTILE) -> int:
    """The smallest k with P(N <= k) >= probability for N ~ Poisson(mean)."""
    if mean <= 0:
        return 0
    term = math.exp(-mean) if mean < 700 else 0.0
    if term == 0.0:  # exp underflows: the normal approximation is exact enough this far out
        z = 1.6448536269514722 if probability == PERCENTILE else _normal_quantile(probability)
        return math.ceil(mean + z * math.sqrt(mean) - 0.5)
    total, k = term, 0
    while total < probability:
        k += 1
        term *= mean / k
        total += term
    return k


def _normal_quantile(probability: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(probability)


def max_mean_in_flight(concurrency: int, probability: float = PERCENTILE) -> float:
    """The largest mean m with P(1 + Poisson(m) <= concurrency) >= probability."""
    if concurrency < 1:
        return 0.0
    low, high = 0.0, float(concurrency)
    for _ in range(60):
        mid = (low + high) / 2
        if 1 + poisson_quantile(mid, probability) <= concurrency:
            low = mid
        else:
            high = mid
    return low


@dataclass(frozen=True)
class ReplicaCapacity:
    """What one replica of a layout takes within the targets.

    ``concurrency`` is C* (requests in flight at which the targets still hold), ``limited_by``
    what stops it going higher, ``requests_per_s`` the Poisson rate at which 95% of requests run
    at most C* deep, ``mean_in_flight`` the requests in flight at that rate (the autoscaler's
    per-replica target), ``at_capacity`` the prediction at that mean and ``at_limit`` at C*.
    """

    concurrency: int
    limited_by: str
    requests_per_s: float
    mean_in_flight: float
    at_capacity: ThroughputPrediction
    at_limit: ThroughputPrediction


def replica_capacity(plan: Plan, model: ModelArchitecture, target: TrafficTarget) -> ReplicaCapacity | None:
    """None when one request alone misses the latency targets on this layout."""
    shape = target.shape
    cap_prediction = predict_for_plan(plan, model, shape, max(plan.settings.max_num_seqs or 1, 1))
    running = cap_prediction.running
    cache: dict[int, ThroughputPrediction] = {}

    def at(concurrency: int) -> ThroughputPrediction:
        if concurrency not in cache:
            cache[concurrency] = predict_for_plan(plan, model, shape, concurrency)
        return cache[concurrency]

    if not target.met_by(at(1)):
        return None
    deepest = largest_where(lambda c: target.met_by(at(c)), running, 1)
    if deepest < running:
        limited_by = _latency_limit(target, at(deepest + 1))
    else:
        limited_by = "max_num_seqs" if cap_prediction.limited_by == "concurrency" else cap_prediction.limited_by
    mean = max_mean_in_flight(deepest)
    at_capacity = at(min(deepest, max(1, math.ceil(1 + mean))))
    rate = mean / at_capacity.request_latency_s
    return ReplicaCapacity(deepest, limited_by, rate, mean, at_capacity, at(deepest))


def _latency_limit(target: TrafficTarget, prediction: ThroughputPrediction) -> str:
    if target.p95_ttft_s is not None and prediction.ttft_s > target.p95_ttft_s:
        return "p95 TTFT"
    return "p95 TPOT"


@dataclass(frozen=True)
class LayoutOption:
    """One layout weighed for a target: its replicas and cost, or why it was set aside."""

    plan: Plan
    usd_per_replica_hour: float
    capacity: ReplicaCapacity | None
    replicas: int = 0
    min_replicas: int = 0
    rejected: str | None = None
    miss: float = 1.0  # with no capacity: how far one request alone is from the targets

    @property
    def layout(self) -> str:
        p = self.plan
        return f"{p.gpu} TP={p.tensor_parallel_size} PP={p.pipeline_parallel_size}"

    @property
    def usd_per_hour(self) -> float:
        return self.replicas * self.usd_per_replica_hour

    def usd_per_million_output_tokens(self, target: TrafficTarget) -> float:
        tokens_per_hour = target.requests_per_s * target.output_tokens * 3600
        return self.usd_per_hour / tokens_per_hour * 1e6

    def to_dict(self, target: TrafficTarget) -> dict:
        p = self.plan
        data: dict = {
            "layout": self.layout,
            "instanceType": p.instance_type,
            "gpusPerReplica": p.gpus,
            "usdPerReplicaHour": round(self.usd_per_replica_hour, 2),
        }
        if self.capacity is not None:
            c = self.capacity
            data.update(
                perReplica={
                    "requestsPerSecond": round(c.requests_per_s, 3),
                    "outputTokensPerSecond": round(c.requests_per_s * target.output_tokens, 1),
                    "inputTokensPerSecond": round(c.requests_per_s * target.input_tokens, 1),
                    "meanInFlight": round(c.mean_in_flight, 2),
                    "p95InFlight": c.concurrency,
                    "limitedBy": c.limited_by,
                    "ttftSAtP95InFlight": round(c.at_limit.ttft_s, 4),
                    "tpotSAtP95InFlight": round(c.at_limit.tpot_s, 5),
                },
            )
        if self.rejected is None:
            data.update(
                replicas=self.replicas,
                usdPerHour=round(self.usd_per_hour, 2),
                usdPerMillionOutputTokens=round(self.usd_per_million_output_tokens(target), 3),
            )
        else:
            data["rejected"] = self.rejected
        return data


@dataclass(frozen=True)
class TrafficPlan:
    """The chosen layout and replica counts, and every layout weighed (cheapest first)."""

    target: TrafficTarget
    chosen: LayoutOption
    options: tuple[LayoutOption, ...]
    set_aside: tuple[str, ...] = ()  # layouts not weighed, each with why (does not start, marginal)
    notes: tuple[str, ...] = ()  # what the caller knows of the deployment (engine, rollout)

    @property
    def plan(self) -> Plan:
        return self.chosen.plan

    @property
    def capacity(self) -> ReplicaCapacity:
        assert self.chosen.capacity is not None
        return self.chosen.capacity

    @property
    def max_replicas(self) -> int:
        return self.chosen.replicas

    @property
    def min_replicas(self) -> int:
        return self.chosen.min_replicas

    def to_dict(self) -> dict:
        t = self.target
        chosen = self.chosen.to_dict(t)
        per_replica = self.capacity
        return {
            "target": {
                "requestsPerSecond": t.requests_per_s,
                "minRequestsPerSecond": t.min_requests_per_s,
                "inputTokens": t.input_tokens,
                "outputTokens": t.output_tokens,
                "p95TtftS": t.p95_ttft_s,
                "p95TpotS": t.p95_tpot_s,
            },
            "chosen": chosen,
            "replicas": {"min": self.min_replicas, "max": self.max_replicas},
            "atTarget": {
                "outputTokensPerSecond": round(t.requests_per_s * t.output_tokens, 1),
                "usdPerHour": chosen["usdPerHour"],
                "usdPerMillionOutputTokens": chosen["usdPerMillionOutputTokens"],
            },
            "calibrated": list(per_replica.at_capacity.calibrated),
            "extrapolated": list(per_replica.at_capacity.extrapolated),
            "weighed": [o.to_dict(t) for o in self.options],
            "setAside": list(self.set_aside),
            "notes": list(self.notes),
        }


class TrafficUnmetError(SizingError):
    """No allowed layout meets the target; ``closest`` is the layout nearest to it (or None)."""

    def __init__(self, message: str, options: tuple[LayoutOption, ...], closest: LayoutOption | None):
        super().__init__(message)
        self.options = options
        self.closest = closest


def plan_for_traffic(
    model: ModelArchitecture,
    plans: list[Plan],
    target: TrafficTarget,
    *,
    node_usd_per_hour: Mapping[str, float],
    max_gpus: Mapping[str, int] | None = None,
    limit: Callable[[Plan], str | None] | None = None,
    attempts: Sequence[Attempt] = (),
) -> TrafficPlan:
    """Weigh every plan (layouts the memory plan starts) for ``target``.

    ``node_usd_per_hour`` prices each instance type; ``max_gpus`` caps the GPUs replicas of one
    instance type may take (the node groups' maxNodes); ``limit`` may set a layout aside for a
    reason of the caller's (an engine that offers only some TP sizes). Marginal layouts are weighed
    only when no other starts. ``attempts`` are the layouts the memory plan found not to start
    (``fitting_plans``): the single-node ones are listed as set aside. Raises
    ``TrafficUnmetError`` naming the closest layout.
    """
    if not plans:
        raise SizingError(f"{model.name}: no layout starts, so none can serve the traffic target")
    safe = [p for p in plans if not p.marginal] or plans
    set_aside = [f"{a.describe()}" for a in attempts if a.pipeline_parallel_size == 1]
    set_aside += [
        f"{p.gpu} TP={p.tensor_parallel_size} PP={p.pipeline_parallel_size}: starts with a marginal KV cache "
        "(a release's drift could stop it); a layout with headroom is weighed instead"
        for p in plans
        if p not in safe
    ]
    options = []
    for plan in _weighable(safe):
        options.append(_option(model, plan, target, node_usd_per_hour, max_gpus, limit))
    feasible = [o for o in options if o.rejected is None]
    ordered = sorted(options, key=_order)
    if feasible:
        chosen = min(feasible, key=_order)
        return TrafficPlan(target, chosen, tuple(ordered), tuple(set_aside))
    closest = _closest(options)
    message = _unmet_message(model, target, ordered, closest, set_aside)
    raise TrafficUnmetError(message, tuple(ordered), closest)


def _weighable(plans: list[Plan]) -> list[Plan]:
    """Pipeline stages add hops and serve no more per GPU than replicas of the stages' TP would, so
    a pipeline is weighed only on an instance type where no single-node layout starts, and only
    the shallowest that does."""
    single_node = {p.instance_type for p in plans if p.pipeline_parallel_size == 1}
    kept, piped = [], set()
    for plan in plans:
        if plan.pipeline_parallel_size == 1:
            kept.append(plan)
        elif plan.instance_type not in single_node and plan.instance_type not in piped:
            kept.append(plan)
            piped.add(plan.instance_type)
    return kept


def _option(model, plan, target, node_usd_per_hour, max_gpus, limit) -> LayoutOption:
    it = INSTANCES[plan.instance_type]
    try:
        node_usd = node_usd_per_hour[plan.instance_type]
    except KeyError:
        raise SizingError(f"no price for {plan.instance_type}: give its $/hour") from None
    per_replica = replica_usd_per_hour(
        pods=plan.pods, gpus_per_pod=plan.gpus_per_pod, gpus_per_node=it.gpus_per_node, node_usd_per_hour=node_usd
    )
    reason = limit(plan) if limit else None
    if reason:
        return LayoutOption(plan, per_replica, None, rejected=reason)
    try:
        capacity = replica_capacity(plan, model, target)
    except SizingError as error:
        return LayoutOption(plan, per_replica, None, rejected=str(error))
    if capacity is None:
        alone = predict_for_plan(plan, model, target.shape, 1)
        return LayoutOption(plan, per_replica, None, rejected=_alone_text(target, alone), miss=target.miss(alone))
    replicas = max(1, math.ceil(target.requests_per_s / capacity.requests_per_s - 1e-9))
    floor = max(1, math.ceil(target.min_requests_per_s / capacity.requests_per_s - 1e-9))
    option = LayoutOption(plan, per_replica, capacity, replicas, floor)
    allowed = (max_gpus or {}).get(plan.instance_type)
    if allowed is not None and replicas * plan.gpus > allowed:
        return LayoutOption(
            plan,
            per_replica,
            capacity,
            replicas,
            floor,
            rejected=f"needs {replicas} replicas x {plan.gpus} GPUs = {replicas * plan.gpus} GPUs; the node groups "
            f"of {plan.instance_type} allow {allowed} (maxNodes)",
        )
    return option


def _alone_text(target: TrafficTarget, alone: ThroughputPrediction) -> str:
    parts = []
    if target.p95_ttft_s is not None and alone.ttft_s > target.p95_ttft_s:
        parts.append(f"TTFT {alone.ttft_s:.3f} s > {target.p95_ttft_s:g} s")
    if target.p95_tpot_s is not None and alone.tpot_s > target.p95_tpot_s:
        parts.append(f"TPOT {alone.tpot_s * 1000:.1f} ms > {target.p95_tpot_s * 1000:g} ms")
    return "one request alone misses the targets: " + ", ".join(parts)


def _order(option: LayoutOption) -> tuple:
    """Cheapest per hour, then fewer GPUs per replica (smaller failure domain), then more headroom."""
    if option.rejected is not None:
        return (1, option.miss, option.plan.gpus, option.usd_per_replica_hour)
    spare = option.replicas * option.capacity.requests_per_s if option.capacity else 0.0
    return (0, round(option.usd_per_hour, 6), option.plan.gpus, -spare)


def _closest(options: list[LayoutOption]) -> LayoutOption | None:
    """With latency missed everywhere, the layout nearest the targets; else the one needing the fewest GPUs."""
    served = [o for o in options if o.capacity is not None]
    if served:
        return min(served, key=lambda o: (o.replicas * o.plan.gpus, o.usd_per_hour))
    missed = [o for o in options if o.miss > 1.0]
    return min(missed, key=lambda o: (o.miss, o.plan.gpus)) if missed else None


def _unmet_message(
    model, target: TrafficTarget, options: list[LayoutOption], closest: LayoutOption | None, set_aside: list[str]
) -> str:
    latency = []
    if target.p95_ttft_s is not None:
        latency.append(f"p95 TTFT <= {target.p95_ttft_s:g} s")
    if target.p95_tpot_s is not None:
        latency.append(f"p95 TPOT <= {target.p95_tpot_s * 1000:g} ms")
    lines = [
        f"{model.name}: no allowed layout serves {target.requests_per_s:g} requests/s of {target.input_tokens} in + "
        f"{target.output_tokens} out tokens" + (f" within {' and '.join(latency)}" if latency else "") + ". Weighed:"
    ]
    lines += [f"  - {o.layout}: {o.rejected}" for o in options]
    lines += [f"  - set aside {line}" for line in set_aside]
    if closest is not None:
        if closest.capacity is not None:
            lines.append(
                f"What would work: the closest layout, {closest.layout}, with {closest.replicas} replicas of "
                f"{closest.capacity.requests_per_s:.2f} requests/s each: allow more GPUs (raise the node groups' "
                "maxNodes) or lower requestsPerSecond"
            )
        else:
            lines.append(
                f"What would work: the closest layout is {closest.layout} "
                f"({closest.rejected.split(': ', 1)[-1]}): relax the latency targets, shorten the requests, or "
                "allow faster GPUs or a larger TP"
            )
    return "\n".join(lines)
