"""Planning replicas for a traffic target: each replica's capacity within the p95 latencies, the
simulation check of the chosen count, the cheapest layout among those weighed, and the answer
when none meets the target."""

from __future__ import annotations

import math

import pytest

from sizing.arrival_simulation import simulate_arrivals
from sizing.errors import SizingError
from sizing.instances import INSTANCES
from sizing.models import load_model
from sizing.planner import fitting_plans
from sizing.settings import ServingSettings
from sizing.throughput import predict_for_plan
from sizing.traffic import SIMULATED_REQUESTS, TrafficTarget, TrafficUnmetError, plan_for_traffic, replica_capacity

ON_DEMAND = {name: it.on_demand_usd_per_hour for name, it in INSTANCES.items()}
H100 = ["p5.48xlarge"]


def h100_plans(model_name: str, max_model_len: int = 8192, **kwargs):
    model = load_model(model_name)
    plans, attempts = fitting_plans(model, ServingSettings(max_model_len=max_model_len), instance_types=H100, **kwargs)
    return model, plans, attempts


def target(**overrides) -> TrafficTarget:
    values = dict(requests_per_s=20.0, input_tokens=1000, output_tokens=200, p95_ttft_s=1.0, p95_tpot_s=0.05)
    return TrafficTarget(**(values | overrides))


def test_a_replicas_capacity_is_the_highest_rate_within_the_targets():
    model, plans, _ = h100_plans("llama-3.1-70b")
    plan = next(p for p in plans if p.tensor_parallel_size == 4)
    t = target()
    capacity = replica_capacity(plan, model, t)
    assert capacity is not None and capacity.limited_by == "p95 TPOT"
    assert capacity.load.p95_tpot_s <= t.p95_tpot_s and capacity.load.p95_ttft_s <= t.p95_ttft_s
    # The p95 latencies are the throughput model's at the concurrency 95% of arrivals run at.
    at = predict_for_plan(plan, model, t.shape, capacity.concurrency)
    assert capacity.load.p95_tpot_s == pytest.approx(at.tpot_s, rel=0.02)
    assert capacity.mean_in_flight < capacity.concurrency


def test_a_tighter_latency_never_raises_a_replicas_capacity():
    model, plans, _ = h100_plans("llama-3.1-8b")
    plan = plans[0]
    rates = [replica_capacity(plan, model, target(p95_tpot_s=tpot)).requests_per_s for tpot in (0.08, 0.04, 0.02)]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]


def test_without_latency_targets_the_engines_caps_bound_a_replica():
    model, plans, _ = h100_plans("llama-3.1-8b")
    capacity = replica_capacity(plans[0], model, target(p95_ttft_s=None, p95_tpot_s=None))
    assert capacity.limited_by in ("max_num_seqs", "kv_cache", "max_num_batched_tokens")


def test_the_chosen_layout_is_the_cheapest_that_serves_the_peak():
    model, plans, _ = h100_plans("llama-3.1-70b")
    t = target()
    result = plan_for_traffic(model, plans, t, node_usd_per_hour=ON_DEMAND)
    served = [o for o in result.options if o.rejected is None]
    # Checked options cost at least their closed form, so the chosen (checked) one is the cheapest.
    assert all(result.chosen.usd_per_hour <= o.usd_per_hour for o in served)
    assert result.chosen.simulated is not None
    for option in served:  # the closed form's fewest replicas that carry the peak, plus what the check added
        per = option.capacity.requests_per_s
        closed_form = option.replicas - option.added_replicas
        assert closed_form * per >= t.requests_per_s > (closed_form - 1) * per
    assert result.to_dict()["weighed"][0]["layout"] == result.chosen.layout


def test_a_larger_tp_can_beat_more_replicas_and_lose_to_them():
    # 70B on H100: a TP=2 replica holds little KV cache, so 4-GPU replicas serve the peak cheaper.
    model, plans, _ = h100_plans("llama-3.1-70b")
    seventy = plan_for_traffic(model, plans, target(), node_usd_per_hour=ON_DEMAND)
    smaller = [o for o in seventy.options if o.rejected is None and o.plan.gpus < seventy.chosen.plan.gpus]
    assert smaller and all(o.usd_per_hour > seventy.chosen.usd_per_hour for o in smaller)
    # 8B: one GPU per replica already holds a deep batch; larger TPs cost more for the same peak.
    model, plans, _ = h100_plans("llama-3.1-8b")
    eight = plan_for_traffic(model, plans, target(requests_per_s=60.0), node_usd_per_hour=ON_DEMAND)
    larger = [o for o in eight.options if o.rejected is None and o.plan.gpus > eight.chosen.plan.gpus]
    assert eight.chosen.replicas > 1
    assert larger and all(o.usd_per_hour >= eight.chosen.usd_per_hour for o in larger)


def test_replicas_grow_with_the_peak_and_the_floor_follows_the_trough():
    model, plans, _ = h100_plans("llama-3.1-8b")
    plan = plans[:1]
    counts = [
        plan_for_traffic(model, plan, target(requests_per_s=rate), node_usd_per_hour=ON_DEMAND).max_replicas
        for rate in (5.0, 50.0, 200.0)
    ]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    result = plan_for_traffic(
        model, plan, target(requests_per_s=200.0, min_requests_per_s=50.0), node_usd_per_hour=ON_DEMAND
    )
    per = result.capacity.requests_per_s
    assert result.min_replicas == math.ceil(50.0 / per) and 1 <= result.min_replicas <= result.max_replicas
    assert plan_for_traffic(model, plan, target(min_requests_per_s=0.0), node_usd_per_hour=ON_DEMAND).min_replicas == 1


def test_the_node_groups_gpus_set_a_layout_aside_with_the_numbers():
    model, plans, _ = h100_plans("llama-3.1-70b")
    with pytest.raises(TrafficUnmetError) as caught:
        plan_for_traffic(
            model, plans, target(requests_per_s=500.0), node_usd_per_hour=ON_DEMAND, max_gpus={"p5.48xlarge": 16}
        )
    message = str(caught.value)
    assert "the node groups of p5.48xlarge allow 16 (maxNodes)" in message
    assert "What would work: the closest layout" in message and "raise the node groups' maxNodes" in message
    closest = caught.value.closest
    assert closest is not None and closest.capacity is not None
    fewest = min(o.replicas * o.plan.gpus for o in caught.value.options if o.capacity is not None)
    assert closest.replicas * closest.plan.gpus == fewest


def test_a_latency_no_layout_reaches_names_the_closest_layout():
    model, plans, _ = h100_plans("llama-3.1-70b")
    t = target(p95_tpot_s=0.004)  # 4 ms per token: beyond what HBM bandwidth allows a 70B model
    with pytest.raises(TrafficUnmetError) as caught:
        plan_for_traffic(model, plans, t, node_usd_per_hour=ON_DEMAND)
    error = caught.value
    assert all(o.rejected.startswith("one request alone misses the targets: TPOT") for o in error.options)
    assert error.closest.miss == min(o.miss for o in error.options)
    # The fastest layout alone is the closest: the most GPUs streaming the weights.
    alone = {o.layout: predict_for_plan(o.plan, model, t.shape, 1).tpot_s for o in error.options}
    assert error.closest.layout == min(alone, key=alone.get)
    assert f"the closest layout is {error.closest.layout}" in str(error) and "relax the latency targets" in str(error)


def test_marginal_and_failed_layouts_are_listed_as_set_aside():
    model = load_model("llama-3.1-8b")
    settings_ = ServingSettings(max_model_len=32768)
    plans, attempts = fitting_plans(model, settings_, instance_types=H100, min_concurrency=16)
    result = plan_for_traffic(model, plans, target(), node_usd_per_hour=ON_DEMAND, attempts=attempts)
    weighed = {o.layout for o in result.options}
    assert all(p.tensor_parallel_size > 1 for p in (o.plan for o in result.options))
    assert any("TP=1" in line and "fewer than min_concurrency=16" in line for line in result.set_aside)
    assert not any(line.split(":")[0] in weighed for line in result.set_aside)


def test_a_caller_limit_sets_a_layout_aside():
    model, plans, _ = h100_plans("llama-3.1-70b")
    result = plan_for_traffic(
        model,
        plans,
        target(),
        node_usd_per_hour=ON_DEMAND,
        limit=lambda plan: "offered only at TP 8" if plan.tensor_parallel_size != 8 else None,
    )
    assert result.plan.tensor_parallel_size == 8
    assert {o.rejected for o in result.options if o.plan.tensor_parallel_size != 8} == {"offered only at TP 8"}


def test_pipelines_are_weighed_only_where_no_single_node_layout_starts():
    model, plans, _ = h100_plans("llama-3.1-8b")
    result = plan_for_traffic(model, plans, target(), node_usd_per_hour=ON_DEMAND)
    assert all(o.plan.pipeline_parallel_size == 1 for o in result.options)
    big, plans, _ = h100_plans("llama-3.1-405b", max_model_len=8192, min_concurrency=1)
    result = plan_for_traffic(big, plans, target(requests_per_s=1.0, p95_tpot_s=0.2), node_usd_per_hour=ON_DEMAND)
    depths = [o.plan.pipeline_parallel_size for o in result.options]
    assert depths == [min(p.pipeline_parallel_size for p in plans)]


def test_the_plans_numbers_agree_with_each_other():
    model, plans, _ = h100_plans("llama-3.1-70b")
    t = target()
    data = plan_for_traffic(model, plans, t, node_usd_per_hour=ON_DEMAND).to_dict()
    chosen = data["chosen"]
    assert chosen["usdPerHour"] == pytest.approx(chosen["replicas"] * chosen["usdPerReplicaHour"], abs=0.02)
    per_hour_tokens = t.requests_per_s * t.output_tokens * 3600
    assert chosen["usdPerMillionOutputTokens"] == pytest.approx(chosen["usdPerHour"] / per_hour_tokens * 1e6, rel=1e-3)
    per = chosen["perReplica"]
    assert per["outputTokensPerSecond"] == pytest.approx(per["requestsPerSecond"] * t.output_tokens, rel=1e-3)
    assert data["replicas"]["max"] == chosen["replicas"]
    assert data["extrapolated"], "an H100 prediction rests on the H200 calibration: it says so"


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"requests_per_s": 0.0}, "requests_per_s 0.0 is invalid"),
        ({"requests_per_s": float("nan")}, "requests_per_s nan is invalid"),
        ({"min_requests_per_s": 30.0}, "min_requests_per_s 30 is above requests_per_s 20"),
        ({"p95_tpot_s": -1.0}, "p95_tpot_s -1.0 is invalid"),
    ],
)
def test_bad_targets_say_what_would_work(changes, fragment):
    with pytest.raises(SizingError, match=None) as caught:
        target(**changes)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "model_name, rate, shape, ttft_s, tpot_s",
    [
        ("llama-3.1-8b", 60.0, (1000, 200), 1.0, 0.05),
        ("llama-3.1-8b", 20.0, (4000, 100), 0.3, 0.05),  # prefill-heavy: the closed form is optimistic here
        ("mixtral-8x7b", 15.0, (1000, 300), 1.0, 0.03),
    ],
)
def test_the_chosen_count_meets_the_targets_request_by_request(model_name, rate, shape, ttft_s, tpot_s):
    model, plans, _ = h100_plans(model_name)
    t = target(requests_per_s=rate, input_tokens=shape[0], output_tokens=shape[1], p95_ttft_s=ttft_s, p95_tpot_s=tpot_s)
    result = plan_for_traffic(model, plans, t, node_usd_per_hour=ON_DEMAND)
    chosen = result.chosen
    load = simulate_arrivals(chosen.plan, model, t.shape, rate / chosen.replicas, requests=SIMULATED_REQUESTS)
    assert load.p95_ttft_s <= ttft_s and load.p95_tpot_s <= tpot_s
    assert result.simulated == load
    if chosen.added_replicas:  # one fewer missed in the simulation: the added replicas were needed
        fewer = simulate_arrivals(
            chosen.plan, model, t.shape, rate / (chosen.replicas - 1), requests=SIMULATED_REQUESTS
        )
        assert fewer.p95_ttft_s > ttft_s or fewer.p95_tpot_s > tpot_s


def test_the_prefill_heavy_case_needed_the_check():
    # 4,000-token prompts: one prompt's prefill fills a step, which the closed form's average step
    # hides; the simulation adds replicas to some layout the closed form would have under-sized.
    model, plans, _ = h100_plans("llama-3.1-8b")
    t = target(requests_per_s=20.0, input_tokens=4000, output_tokens=100, p95_ttft_s=0.3)
    result = plan_for_traffic(model, plans, t, node_usd_per_hour=ON_DEMAND)
    assert any(o.added_replicas > 0 for o in result.options if o.simulated is not None)
    for option in result.options:
        if option.simulated is not None and option.added_replicas:
            assert option.to_dict(t)["simulated"]["addedReplicas"] == option.added_replicas
