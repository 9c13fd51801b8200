"""A model's ``traffic`` target through the wired program: its layout, replicas, autoscaling
bounds, running-requests trigger, alerts and cost come from the prediction, read from what the
mocked ``__main__.py`` registered and exported; bad targets stop the preview with nothing registered."""

from __future__ import annotations

import math

import pytest

from sizing.prices import ON_DEMAND
from tests.harness import check_invariants, container, deployments, run_bad_config, run_config, run_stack, stack_config

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
TRAFFIC = {
    "requestsPerSecond": 40,
    "inputTokens": 2000,
    "outputTokens": 400,
    "p95TtftS": 0.5,
    "p95TpotS": 0.02,
}


def scaled_object(run, name: str) -> dict:
    (found,) = [s.plain_inputs for s in run.of_type(SCALED_OBJECT) if s.plain_inputs["metadata"]["name"] == name]
    return found


def model_entry(run, name: str) -> dict:
    return next(m for m in run.outputs["plan"]["models"] if m["name"] == name)


def prod_8b(config: dict) -> dict:
    return next(m for m in config["gpu-inference:models"] if m["name"] == "llama-3-1-8b")


def rejected(config: dict) -> str:
    run = run_bad_config(config, preview=True)
    assert run.error is not None and run.registrations == [], "refused before anything is registered"
    return str(run.error)


@pytest.mark.parametrize("preview", [True, False])
def test_prods_8b_gets_its_layout_bounds_trigger_and_cost_from_the_prediction(preview):
    run = run_stack("prod", preview)
    assert run.error is None and check_invariants(run) == []
    model = model_entry(run, "llama-3-1-8b")
    traffic, plan = model["traffic"], model["plan"]
    chosen, per = traffic["chosen"], traffic["chosen"]["perReplica"]
    target = prod_8b(stack_config("prod"))["traffic"]
    # The layout served is the chosen one: its GPUs per pod are what the Deployment requests.
    gpus = container(deployments(run)["llama-3-1-8b"])["resources"]["limits"]["nvidia.com/gpu"]
    assert int(gpus) == chosen["gpusPerReplica"] == plan["gpus_per_pod"]
    # maxReplicas: the fewest replicas whose capacity carries the peak; the floor: the config's 2.
    high = traffic["replicas"]["max"]
    assert high * per["requestsPerSecond"] >= target["requestsPerSecond"] > (high - 1) * per["requestsPerSecond"]
    scaled = scaled_object(run, model["name"])
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, high)
    # The autoscaler holds each replica at the mean in flight of its share of the peak (simulated
    # there within the p95 targets): at the peak it asks for maxReplicas.
    triggers = {t["name"]: t for t in scaled["spec"]["triggers"]}
    assert "vllm:num_requests_running" in triggers["running"]["metadata"]["query"]
    assert triggers["running"]["metricType"] == "AverageValue"
    running = float(triggers["running"]["metadata"]["threshold"])
    at_peak = traffic["atTarget"]
    assert running == at_peak["meanInFlightPerReplica"]
    assert at_peak["simulatedP95TpotS"] <= target["p95TpotS"] and at_peak["simulatedP95TtftS"] <= target["p95TtftS"]
    assert math.ceil(high * at_peak["meanInFlightPerReplica"] / running) == high
    # Cost: the replicas' share of a p5 node, the same in the traffic plan and the cost output.
    per_replica = ON_DEMAND["p5.48xlarge"].usd_per_hour * chosen["gpusPerReplica"] / 8
    assert chosen["usdPerReplicaHour"] == round(per_replica, 2)
    assert run.outputs["cost"]["usdPerHour"]["models"]["llama-3-1-8b"][1] == round(high * per_replica, 2)
    tokens_per_hour = target["requestsPerSecond"] * target["outputTokens"] * 3600
    assert traffic["atTarget"]["usdPerMillionOutputTokens"] == pytest.approx(
        high * per_replica / tokens_per_hour * 1e6, abs=1e-3
    )
    # Models without a target keep the memory plan and no running trigger.
    other = scaled_object(run, "llama-3-1-70b")
    assert "running" not in {t["name"] for t in other["spec"]["triggers"]}


def test_without_autoscaling_the_target_sets_the_fixed_count():
    config = stack_config("prod")
    model = prod_8b(config)
    model.pop("autoscaling")
    model["traffic"].pop("minRequestsPerSecond")
    run = run_config(config, preview=True)
    assert run.error is None
    needed = model_entry(run, "llama-3-1-8b")["traffic"]["replicas"]["max"]
    assert deployments(run)["llama-3-1-8b"].plain_inputs["spec"]["replicas"] == needed
    assert "llama-3-1-8b" not in {s.plain_inputs["metadata"]["name"] for s in run.of_type(SCALED_OBJECT)}


def test_a_higher_peak_buys_more_replicas_and_costs_more():
    low, high = stack_config("prod"), stack_config("prod")
    prod_8b(low)["traffic"] = {**TRAFFIC, "requestsPerSecond": 10}
    prod_8b(high)["traffic"] = {**TRAFFIC, "requestsPerSecond": 45}
    runs = [run_config(c, preview=True) for c in (low, high)]
    replicas = [model_entry(r, "llama-3-1-8b")["traffic"]["replicas"]["max"] for r in runs]
    cost = [r.outputs["cost"]["usdPerHour"]["models"]["llama-3-1-8b"][1] for r in runs]
    assert replicas[0] < replicas[1] and cost[0] < cost[1]


def test_the_trough_sets_the_floor_when_minreplicas_is_left_out():
    config = stack_config("prod")
    model = prod_8b(config)
    model["autoscaling"] = {}
    model["traffic"] = {**TRAFFIC, "minRequestsPerSecond": 20}
    run = run_config(config, preview=True)
    traffic = model_entry(run, "llama-3-1-8b")["traffic"]
    per = traffic["chosen"]["perReplica"]["requestsPerSecond"]
    assert traffic["replicas"]["min"] == math.ceil(20 / per)
    scaled = scaled_object(run, "llama-3-1-8b")
    assert scaled["spec"]["minReplicaCount"] == traffic["replicas"]["min"]


def test_the_traffic_alerts_take_the_targets_p95s():
    run = run_stack("prod", True)
    (rule,) = run.of_type(PROMETHEUS_RULE)
    group = next(g for g in rule.plain_inputs["spec"]["groups"] if g["name"] == "vllm-llama-3-1-8b")
    alerts = {r["alert"]: r["expr"] for r in group["rules"]}
    target = prod_8b(stack_config("prod"))["traffic"]
    assert alerts["VllmTimePerOutputTokenSloBreached"].endswith(f"> {target['p95TpotS']:g}")
    assert "vllm:inter_token_latency_seconds_bucket" in alerts["VllmTimePerOutputTokenSloBreached"]


@pytest.mark.parametrize(
    "change, fragments",
    [
        (
            lambda m: m.update(replicas=3),
            ["models[0]: replicas 3 is a fixed count but traffic is given", "remove replicas"],
        ),
        (
            lambda m: m.update(autoscaling={"maxReplicas": 1}),
            ["models[0].autoscaling.maxReplicas: 1 cannot serve traffic.requestsPerSecond 40", "raise maxReplicas to"],
        ),
        (
            lambda m: (m.update(autoscaling={"minReplicas": 1}), m["traffic"].update(minRequestsPerSecond=35)),
            ["models[0].autoscaling.minReplicas: 1 cannot serve traffic.minRequestsPerSecond 35", "give at least"],
        ),
        (
            lambda m: (m.pop("autoscaling"), m["traffic"].update(minRequestsPerSecond=5)),
            ["traffic.minRequestsPerSecond 5 sets the autoscaler's floor", "add autoscaling: {}"],
        ),
        (
            lambda m: m["traffic"].update(inputTokens=32000, outputTokens=1000),
            ["traffic.inputTokens 32000 + outputTokens 1000 = 33000 tokens exceed maxModelLen 32768"],
        ),
        (
            lambda m: m["traffic"].update(requestsPerSecond=0),
            ["models[0].traffic.requestsPerSecond: 0 is invalid", "greater than 0"],
        ),
        (
            lambda m: m["traffic"].update(p95TtfS=1),
            ["models[0].traffic.p95TtfS", "valid keys"],
        ),
        (
            lambda m: m["traffic"].update(minRequestsPerSecond=50),
            ["minRequestsPerSecond 50 is above requestsPerSecond 40"],
        ),
    ],
)
def test_bad_targets_are_refused_naming_the_field_and_what_works(change, fragments):
    config = stack_config("prod")
    model = prod_8b(config)
    model["traffic"] = dict(TRAFFIC)
    change(model)
    message = rejected(config)
    for fragment in fragments:
        assert fragment in message


def test_autoscaling_without_bounds_needs_a_traffic_target():
    config = stack_config("prod")
    model = prod_8b(config)
    model.pop("traffic")
    model["autoscaling"] = {"minReplicas": 2}
    message = rejected(config)
    assert "autoscaling.maxReplicas is required without traffic" in message and "or give traffic" in message


def test_a_latency_no_allowed_gpu_reaches_stops_the_preview_with_the_closest_layout():
    config = stack_config("prod")
    prod_8b(config)["traffic"] = {**TRAFFIC, "p95TpotS": 0.001}
    message = rejected(config)
    assert "models[0].traffic (llama-3-1-8b): llama-3.1-8b: no allowed layout serves 40 requests/s" in message
    assert "one request alone misses the targets: TPOT" in message
    assert "What would work: the closest layout is H100-80GB TP=8 PP=1" in message  # most GPUs streaming weights


def test_a_peak_beyond_the_node_groups_is_refused_with_the_gpus_it_needs():
    config = stack_config("prod")
    prod_8b(config)["traffic"] = {**TRAFFIC, "requestsPerSecond": 2000}
    message = rejected(config)
    assert "the node groups of p5.48xlarge allow 32 (maxNodes)" in message
    assert "raise the node groups' maxNodes" in message


def test_a_floor_kept_for_availability_raises_a_ceiling_the_peak_alone_would_set_lower():
    config = stack_config("prod")
    model = prod_8b(config)
    model["traffic"] = {**TRAFFIC, "requestsPerSecond": 2}
    model["autoscaling"] = {"minReplicas": 2}
    run = run_config(config, preview=True)
    assert model_entry(run, "llama-3-1-8b")["traffic"]["replicas"]["max"] == 1
    scaled = scaled_object(run, "llama-3-1-8b")
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 2)
