"""How many replicas of which layout serve a traffic target within its p95 latencies, at the lowest $/hour.

A target is a request rate, a request shape (input and output tokens) and p95 bounds on the time
to first token and the time per output token. For each layout:

1. the throughput model (``sizing.throughput``) gives one replica's latencies at each number of
   requests in flight, up to what the engine runs at once;
2. ``sizing.replica_load`` turns that into the replica's state under random arrivals (a
   birth-death chain of the requests in flight) and the latencies 95% of requests see;
3. the replica's capacity is the highest rate at which those p95s meet the targets and at most 5%
   of requests wait for a slot (a queue grows without bound under an open arrival stream);
4. the peak needs ``ceil(rate / capacity)`` replicas, the trough ``ceil(min rate / capacity)``;
5. the cheapest layouts' counts are then simulated request by request
   (``sizing.arrival_simulation``) at their share of the peak and raised until the simulated
   p95s meet the targets: the closed form averages prefill over steps, and a long prompt that
   fills a step of its own slows the decodes beside it more than that average says.

Every layout the memory plan starts (``sizing.planner.fitting_plans``) is weighed; a larger TP
serves more per replica but costs more GPUs, so either may win, and every alternative is kept
with its numbers or the reason it was set aside.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from sizing.architecture import ModelArchitecture
from sizing.arrival_simulation import SimulatedLoad, simulate_arrivals
from sizing.errors import SizingError
from sizing.instances import INSTANCES
from sizing.plan import Plan
from sizing.planner import Attempt
from sizing.prices import replica_usd_per_hour
from sizing.replica_load import PERCENTILE, LoadAtRate, highest_rate, latency_curve, load_at
from sizing.throughput import RequestShape, ThroughputPrediction, predict_for_plan

SIMULATED_REQUESTS = 2000  # per check: ~0.2 s on one core
SIMULATED_OPTIONS = 4  # the cheapest options checked at most
MIN_ADDED_REPLICAS = 3  # replicas the check may add to one replica's count (else as many as it had)


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

    def within(self, ttft_s: float, tpot_s: float) -> bool:
        """Whether latencies (one request's, or a load's p95s) meet the targets."""
        return (self.p95_ttft_s is None or ttft_s <= self.p95_ttft_s) and (
            self.p95_tpot_s is None or tpot_s <= self.p95_tpot_s
        )

    def met_by(self, prediction: ThroughputPrediction) -> bool:
        return self.within(prediction.ttft_s, prediction.tpot_s)

    def load_met_by(self, load: LoadAtRate | SimulatedLoad) -> bool:
        return self.within(load.p95_ttft_s, load.p95_tpot_s)

    def miss(self, prediction: ThroughputPrediction) -> float:
        """How far a prediction is from the targets: the larger ratio of predicted to target (1 = on it)."""
        ratios = [1.0]
        if self.p95_ttft_s is not None:
            ratios.append(prediction.ttft_s / self.p95_ttft_s)
        if self.p95_tpot_s is not None:
            ratios.append(prediction.tpot_s / self.p95_tpot_s)
        return max(ratios)


@dataclass(frozen=True)
class ReplicaCapacity:
    """What one replica of a layout takes within the targets.

    ``requests_per_s`` is the highest Poisson rate it serves within them, ``limited_by`` what
    stops it going higher (a p95 target, or the engine's cap: ``max_num_seqs``, ``kv_cache``,
    ``max_num_batched_tokens``), ``load`` its state at that rate (p95 concurrency and latencies,
    mean requests running: the autoscaler's per-replica target), ``at_capacity`` the throughput
    prediction at the mean running and ``at_limit`` at the p95 concurrency.
    """

    requests_per_s: float
    limited_by: str
    load: LoadAtRate
    at_capacity: ThroughputPrediction
    at_limit: ThroughputPrediction

    @property
    def concurrency(self) -> int:
        return self.load.p95_concurrency

    @property
    def mean_in_flight(self) -> float:
        return self.load.mean_running


@functools.lru_cache(maxsize=1024)
def replica_capacity(plan: Plan, model: ModelArchitecture, target: TrafficTarget) -> ReplicaCapacity | None:
    """None when one request alone misses the latency targets on this layout. Cached: a preview
    weighs the same layouts for every model with the same target."""
    shape = target.shape
    cap_prediction = predict_for_plan(plan, model, shape, plan.settings.max_num_seqs or 1)
    predictions: dict[int, ThroughputPrediction] = {}

    def at(concurrency: int) -> ThroughputPrediction:
        if concurrency not in predictions:
            predictions[concurrency] = predict_for_plan(plan, model, shape, concurrency)
        return predictions[concurrency]

    if not target.met_by(at(1)):
        return None
    curve = latency_curve(lambda k: (at(k).request_latency_s, at(k).ttft_s, at(k).tpot_s), cap_prediction.running)

    def meets(load: LoadAtRate) -> bool:
        return load.queued_fraction <= 1 - PERCENTILE and target.load_met_by(load)

    best = highest_rate(curve, meets)
    if best is None:
        return None
    beyond = load_at(curve, best.requests_per_s * 1.001)
    if beyond.stable and beyond.queued_fraction <= 1 - PERCENTILE and not target.load_met_by(beyond):
        ttft_missed = target.p95_ttft_s is not None and beyond.p95_ttft_s > target.p95_ttft_s
        limited_by = "p95 TTFT" if ttft_missed else "p95 TPOT"
    else:
        limited_by = "max_num_seqs" if cap_prediction.limited_by == "concurrency" else cap_prediction.limited_by
    return ReplicaCapacity(
        requests_per_s=best.requests_per_s,
        limited_by=limited_by,
        load=best,
        at_capacity=at(max(1, round(best.mean_running))),
        at_limit=at(best.p95_concurrency),
    )


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
    simulated: SimulatedLoad | None = None  # the replica count checked request by request, where it was
    added_replicas: int = 0  # beyond the closed form's count, for the simulated p95s to meet the targets

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
                    "p95TtftS": round(c.load.p95_ttft_s, 4),
                    "p95TpotS": round(c.load.p95_tpot_s, 5),
                    "queuedFraction": round(c.load.queued_fraction, 4),
                },
            )
        if self.simulated is not None:
            sim = self.simulated
            data["simulated"] = {
                "requestsPerSecondPerReplica": round(sim.requests_per_s, 3),
                "requests": sim.requests,
                "p95TtftS": round(sim.p95_ttft_s, 4),
                "p95TpotS": round(sim.p95_tpot_s, 5),
                "meanInFlight": round(sim.mean_in_flight, 2),
                "addedReplicas": self.added_replicas,
            }
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
    def simulated(self) -> SimulatedLoad:
        """One replica at its share of the peak, simulated request by request (the plan meets the
        targets there): its mean in flight is the autoscaler's per-replica target."""
        assert self.chosen.simulated is not None
        return self.chosen.simulated

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
                "requestsPerSecondPerReplica": round(t.requests_per_s / self.max_replicas, 3),
                "simulatedP95TtftS": round(self.simulated.p95_ttft_s, 4),
                "simulatedP95TpotS": round(self.simulated.p95_tpot_s, 5),
                "meanInFlightPerReplica": round(self.simulated.mean_in_flight, 2),
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
    """No allowed layout meets the target; ``closest`` is the layout nearest to it (or None), and
    ``suggestions`` say what would work, as ``NoFitError``'s do."""

    def __init__(
        self,
        message: str,
        options: tuple[LayoutOption, ...],
        closest: LayoutOption | None,
        suggestions: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.options = options
        self.closest = closest
        self.suggestions = suggestions


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
    options = _checked_by_simulation(model, options, target, max_gpus)
    feasible = [o for o in options if o.rejected is None and o.simulated is not None]
    ordered = sorted(options, key=_order)
    if feasible:
        chosen = min(feasible, key=_order)
        ordered = [chosen] + [o for o in ordered if o is not chosen]
        return TrafficPlan(target, chosen, tuple(ordered), tuple(set_aside))
    closest = _closest(options)
    what_would_work = _what_would_work(closest)
    message = _unmet_message(model, target, ordered, set_aside, what_would_work)
    raise TrafficUnmetError(message, tuple(ordered), closest, (what_would_work,) if what_would_work else ())


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
    replicas = replicas_for(target.requests_per_s, capacity.requests_per_s)
    floor = replicas_for(target.min_requests_per_s, capacity.requests_per_s)
    option = LayoutOption(plan, per_replica, capacity, replicas, floor)
    allowed = (max_gpus or {}).get(plan.instance_type)
    if allowed is not None and replicas * plan.gpus > allowed:
        return replace(
            option,
            rejected=f"needs {replicas} replicas x {plan.gpus} GPUs = {replicas * plan.gpus} GPUs; the node groups "
            f"of {plan.instance_type} allow {allowed} (maxNodes)",
        )
    return option


def replicas_for(requests_per_s: float, per_replica_requests_per_s: float) -> int:
    """The fewest replicas (at least one) that carry a rate, each taking ``per_replica_requests_per_s``."""
    return max(1, math.ceil(requests_per_s / per_replica_requests_per_s - 1e-9))


def _checked_by_simulation(
    model: ModelArchitecture, options: list[LayoutOption], target: TrafficTarget, max_gpus: Mapping[str, int] | None
) -> list[LayoutOption]:
    """Check the cheapest options' replica counts request by request, cheapest first, adding
    replicas until the simulated p95s meet the targets. The closed form's count is a lower bound
    of the checked one, so once the next option's closed-form cost is no lower than the best
    checked cost, no option left can win (branch and bound)."""
    options = list(options)
    best: float | None = None
    checked = 0
    for index in sorted(range(len(options)), key=lambda i: _order(options[i])):
        option = options[index]
        if option.rejected is not None or checked >= SIMULATED_OPTIONS:
            continue
        if best is not None and option.usd_per_hour >= best:
            break
        options[index] = option = _simulate(model, option, target, max_gpus)
        checked += 1
        if option.rejected is None and (best is None or option.usd_per_hour < best):
            best = option.usd_per_hour
    return options


def _simulate(
    model: ModelArchitecture, option: LayoutOption, target: TrafficTarget, max_gpus: Mapping[str, int] | None
) -> LayoutOption:
    """The fewest replicas, from the closed form's count up, whose share of the peak meets the
    targets in the simulation: more replicas only lighten each one, so the count is found by
    galloping (+1, +2, +4, ...) and then bisecting, at most doubling the closed form's count."""
    base = option.replicas
    allowed = (max_gpus or {}).get(option.plan.instance_type)
    most = base + max(MIN_ADDED_REPLICAS, base)
    if allowed is not None:
        most = min(most, allowed // option.plan.gpus)

    def load_with(replicas: int) -> SimulatedLoad:
        per_replica = target.requests_per_s / replicas
        return simulate_arrivals(option.plan, model, target.shape, per_replica, requests=SIMULATED_REQUESTS)

    load = load_with(base)
    missed, met = base, None
    if target.load_met_by(load):
        met = base
    step = 1
    while met is None and missed < most:
        trial = min(missed + step, most)
        if target.load_met_by(load_with(trial)):
            met = trial
        else:
            missed = trial
        step *= 2
    if met is None:  # (``_option`` set aside a count beyond the groups' GPUs: most >= base)
        worst = load_with(most)
        return replace(
            option,
            simulated=worst,
            added_replicas=most - base,
            rejected=f"simulated request by request, its p95s (TTFT {worst.p95_ttft_s:.3f} s, TPOT "
            f"{worst.p95_tpot_s * 1000:.1f} ms) still miss the targets at {most} replicas"
            + (
                f" (the node groups of {option.plan.instance_type} allow {allowed} GPUs)" if allowed is not None else ""
            ),
        )
    while met - missed > 1:
        middle = (met + missed) // 2
        if target.load_met_by(load_with(middle)):
            met = middle
        else:
            missed = middle
    floor = replicas_for(target.min_requests_per_s, target.requests_per_s / met)
    return replace(
        option,
        replicas=met,
        min_replicas=max(option.min_replicas, floor),
        simulated=load_with(met),
        added_replicas=met - base,
    )


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
    model, target: TrafficTarget, options: list[LayoutOption], set_aside: list[str], what_would_work: str | None
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
    unchecked = f"not simulated (the {SIMULATED_OPTIONS} cheapest were, first)"
    lines += [f"  - {o.layout}: {o.rejected or unchecked}" for o in options]
    lines += [f"  - set aside {line}" for line in set_aside]
    if what_would_work is not None:
        lines.append(f"What would work: {what_would_work}")
    return "\n".join(lines)


def _what_would_work(closest: LayoutOption | None) -> str | None:
    if closest is None:
        return None
    if closest.capacity is not None:
        return (
            f"the closest layout, {closest.layout}, with {closest.replicas} replicas of "
            f"{closest.capacity.requests_per_s:.2f} requests/s each: allow more GPUs (raise the node groups' "
            "maxNodes) or lower requestsPerSecond"
        )
    return (
        f"the closest layout is {closest.layout} ({closest.rejected.split(': ', 1)[-1]}): relax the latency "
        "targets, shorten the requests, or allow faster GPUs or a larger TP"
    )
