"""The wired program's autoscaling, Capacity Block window and cost, after mocked runs of the real
``__main__.py`` (preview and update), read from what it registered and exported."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta

import pytest

from components.keda import KEDA_PAUSED_REPLICAS, REPLICAS_FIELD
from components.node_autoscaling import (
    CLUSTER_AUTOSCALER_NAMESPACE,
    CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
    SAFE_TO_EVICT,
)
from sizing.prices import ON_DEMAND
from tests.harness import (
    DEPLOYMENT,
    LWS,
    NODE_GROUP,
    RELEASE,
    check_invariants,
    deployments,
    run_bad_config,
    run_config,
    run_stack,
    stack_config,
)

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCHEDULE = "aws:autoscaling/schedule:Schedule"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ADDON = "aws:eks/addon:Addon"
SMOKE_JOB = "kubernetes:batch/v1:Job"
# llama-3-1-8b gives a traffic target and minReplicas 2: its ceiling is what the target needs (None here).
PROD_BOUNDS = {"llama-3-1-8b": (2, None), "llama-3-1-70b": (2, 5), "qwen2-5-72b": (1, 4)}


def traffic_max_replicas(run, name: str) -> int:
    """The replicas the model's traffic target needs at its peak, as plan.json reports them."""
    model = next(m for m in run.outputs["plan"]["models"] if m["name"] == name)
    return model["traffic"]["replicas"]["max"]


def scaled_objects(run) -> dict[str, dict]:
    return {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(SCALED_OBJECT)}


def models_of(config: dict) -> list[dict]:
    return config["gpu-inference:models"]


def group_of(config: dict, name: str) -> dict:
    return next(g for g in config["gpu-inference:nodeGroups"] if g["name"] == name)


def prod_with(**changes) -> dict:
    config = stack_config("prod")
    for name, autoscaling in changes.items():
        next(m for m in models_of(config) if m["name"] == name)["autoscaling"] = autoscaling
    return config


@pytest.mark.parametrize("preview", [True, False])
def test_prod_scales_every_model_on_its_own_workload_with_plan_derived_targets(preview):
    run = run_stack("prod", preview)
    assert run.error is None and check_invariants(run) == []
    objects = scaled_objects(run)
    served = deployments(run)
    plans = {m["name"]: m for m in run.outputs["plan"]["models"]}
    assert set(objects) == set(PROD_BOUNDS)
    for name, (low, high) in PROD_BOUNDS.items():
        high = high or traffic_max_replicas(run, name)
        spec = objects[name]["spec"]
        workload = served[name].plain_inputs
        target = spec["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", name)
        assert objects[name]["metadata"]["namespace"] == workload["metadata"]["namespace"]
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (low, high)
        # A quarter of what one replica serves at once (the scheduler's cap or the KV cache's).
        plan = plans[name]["plan"]
        concurrency = min(plan["settings"]["max_num_seqs"], math.floor(plan["max_concurrency"]))
        triggers = {t["name"]: t for t in spec["triggers"]}
        assert float(triggers["queue"]["metadata"]["threshold"]) == math.ceil(concurrency / 4)
        assert (
            'vllm:num_requests_waiting{namespace="inference", model="' + name + '"}'
            in (triggers["queue"]["metadata"]["query"])
        )
        assert float(triggers["kv-cache"]["metadata"]["threshold"]) == 0.8
        # Scale-down waits out twice the server's load (HPA's cap: an hour), so a reload never flaps.
        budget = int(workload["spec"]["template"]["metadata"]["annotations"]["gpu-inference.io/startup-budget-seconds"])
        down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] == min(max(2 * budget, 600), 3600)
        # Created at the floor, or at none while h200-block's Capacity Block is not running.
        block = run.outputs["plan"]["capacityBlocks"]["h200-block"]
        waiting = name == "qwen2-5-72b" and block["phase"] != "during"
        assert workload["spec"]["replicas"] == (0 if waiting else low)


@pytest.mark.parametrize("preview", [True, False])
def test_pulumi_leaves_replicas_and_group_sizes_to_the_autoscalers(preview):
    prod = run_stack("prod", preview)
    for name, workload in deployments(prod).items():
        assert REPLICAS_FIELD in workload.ignore_changes, name
    for group in prod.of_type(NODE_GROUP):
        if group.name in ("h100-reserved", "h200-block"):
            assert group.ignore_changes == ["scalingConfig.desiredSize"], group.name
    dev = run_stack("dev", preview)
    assert all(w.ignore_changes == [] for w in deployments(dev).values())
    assert all(g.ignore_changes == [] for g in dev.of_type(NODE_GROUP))
    assert dev.of_type(SCALED_OBJECT) == []


def _engine_view(old: dict, new: dict, paths: list[str]) -> dict:
    """What the engine diffs: the new inputs with each ignored path holding the old value."""
    merged = copy.deepcopy(new)
    for path in paths:
        *parents, leaf = path.split(".")
        target, source = merged, old
        for key in parents:
            target, source = target[key], source[key]
        target[leaf] = source[leaf]
    return merged


def test_a_second_update_with_another_floor_changes_neither_workload_nor_node_group():
    first = run_config(prod_with(**{"llama-3-1-8b": {"minReplicas": 2, "maxReplicas": 6}}))
    second = run_config(prod_with(**{"llama-3-1-8b": {"minReplicas": 5, "maxReplicas": 6}}))
    before, after = deployments(first)["llama-3-1-8b"], deployments(second)["llama-3-1-8b"]
    assert after.plain_inputs["spec"]["replicas"] == 5  # what a create would use
    assert _engine_view(before.plain_inputs, after.plain_inputs, after.ignore_changes) == before.plain_inputs
    old_group = first.find(NODE_GROUP, "h100-reserved").plain_inputs
    new_group = second.find(NODE_GROUP, "h100-reserved")
    assert new_group.plain_inputs["scalingConfig"]["desiredSize"] != old_group["scalingConfig"]["desiredSize"]
    assert _engine_view(old_group, new_group.plain_inputs, new_group.ignore_changes) == old_group


@pytest.mark.parametrize("preview", [True, False])
def test_the_cluster_autoscaler_never_evicts_a_server(preview):
    prod = run_stack("prod", preview)
    for name, workload in deployments(prod).items():
        annotations = workload.plain_inputs["spec"]["template"]["metadata"]["annotations"]
        assert annotations[SAFE_TO_EVICT] == "false", name
    dev = run_stack("dev", preview)  # no node autoscaler: nothing to say
    for workload in deployments(dev).values():
        assert SAFE_TO_EVICT not in workload.plain_inputs["spec"]["template"]["metadata"]["annotations"]


def test_the_cluster_autoscaler_reuses_the_created_clusters_pod_identity_agent():
    config = stack_config("dev")
    models_of(config)[0].pop("replicas")
    models_of(config)[0]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 2}
    run = run_config(config, preview=True)
    assert run.error is None
    assert [a.plain_inputs["addonName"] for a in run.of_type(ADDON)].count("eks-pod-identity-agent") == 1
    agent = next(a for a in run.of_type(ADDON) if a.plain_inputs["addonName"] == "eks-pod-identity-agent")
    association = next(a for a in run.of_type(POD_IDENTITY) if a.name == "cluster-autoscaler-identity")
    assert agent.urn in association.dependencies
    inputs = association.plain_inputs
    assert (inputs["namespace"], inputs["serviceAccount"]) == (
        CLUSTER_AUTOSCALER_NAMESPACE,
        CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
    )
    release = next(r for r in run.of_type(RELEASE) if r.plain_inputs["chart"] == "cluster-autoscaler")
    assert association.urn in release.dependencies
    assert deployments(run)["llama-3-1-70b"].ignore_changes == []  # fixed replicas stay Pulumi's


def test_prod_cost_matches_the_price_table_by_hand():
    cost = run_stack("prod", False).outputs["cost"]["usdPerHour"]
    p5, p5e = ON_DEMAND["p5.48xlarge"].usd_per_hour, ON_DEMAND["p5e.48xlarge"].usd_per_hour
    # Both groups launch into reservations that bill every reserved instance, launched or not:
    # h100-reserved 4 x p5 (its nodes: 2 at min, 4 at max), h200-block 2 x p5e (1 node at min and max;
    # no Capacity Block rate for p5e in the table, so on-demand). Autoscaling inside them saves nothing.
    assert cost["nodeGroups"]["h100-reserved"] == [round(4 * p5, 2), round(4 * p5, 2)]
    assert cost["nodeGroups"]["h200-block"] == [round(2 * p5e, 2), round(2 * p5e, 2)]
    assert (cost["min"], cost["max"]) == (round(4 * p5 + 2 * p5e, 2), round(4 * p5 + 2 * p5e, 2))
    # A model pays its GPUs' share of the node: 8b is 2 of 8 GPUs, 70b 4 of 8, qwen 2 of 8.
    high = traffic_max_replicas(run_stack("prod", False), "llama-3-1-8b")
    assert cost["models"]["llama-3-1-8b"] == [round(2 * p5 / 4, 2), round(high * p5 / 4, 2)]
    assert cost["models"]["llama-3-1-70b"] == [round(2 * p5 / 2, 2), round(5 * p5 / 2, 2)]
    assert cost["models"]["qwen2-5-72b"] == [round(p5e / 4, 2), round(4 * p5e / 4, 2)]
    # Idle at min on the launched nodes: 16 - (2 x 2 + 2 x 4) on h100-reserved, 8 - 2 on h200-block.
    assert run_stack("prod", False).outputs["cost"]["idleGpus"] == 4 + 6


def test_without_a_reservation_the_cost_follows_the_replicas():
    config = stack_config("prod")
    for name in ("h100-reserved", "h200-block"):
        group_of(config, name).pop("reservedInstances")
    run = run_config(config, preview=True)
    cost = run.outputs["cost"]["usdPerHour"]
    p5, p5e = ON_DEMAND["p5.48xlarge"].usd_per_hour, ON_DEMAND["p5e.48xlarge"].usd_per_hour
    # h100-reserved: at min 2 x 2 + 2 x 4 = 12 GPUs -> 2 nodes; at max 8b's traffic ceiling x 2 + 5 x 4 GPUs.
    nodes = math.ceil((traffic_max_replicas(run, "llama-3-1-8b") * 2 + 5 * 4) / 8)
    assert cost["nodeGroups"]["h100-reserved"] == [round(2 * p5, 2), round(nodes * p5, 2)]
    assert cost["nodeGroups"]["h200-block"] == [round(p5e, 2), round(p5e, 2)]
    assert (cost["min"], cost["max"]) == (round(2 * p5 + p5e, 2), round(nodes * p5 + p5e, 2))


@pytest.mark.parametrize("stack", ["dev", "prod", "multinode"])
def test_every_stack_exports_its_cost_and_plan_json_carries_it(stack):
    run = run_stack(stack, True)
    cost = run.outputs["cost"]
    assert cost["usdPerHour"]["min"] > 0 and cost["usdPerHour"]["max"] >= cost["usdPerHour"]["min"]
    assert run.outputs["plan"]["cost"]["usdPerHour"] == [cost["usdPerHour"]["min"], cost["usdPerHour"]["max"]]


def test_outside_the_capacity_block_window_nothing_waits_for_nodes_that_cannot_exist():
    config = stack_config("prod")
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    group_of(config, "h200-block")["capacityBlock"] = {
        "start": start.isoformat(),
        "end": (start + timedelta(days=7)).isoformat(),
    }
    for preview in (True, False):
        run = run_config(config, preview=preview)
        assert run.outputs["plan"]["capacityBlocks"]["h200-block"]["phase"] == "before"
        assert run.find(NODE_GROUP, "h200-block").plain_inputs["scalingConfig"]["desiredSize"] == 0
        assert deployments(run)["qwen2-5-72b"].plain_inputs["spec"]["replicas"] == 0
        assert scaled_objects(run)["qwen2-5-72b"]["metadata"]["annotations"] == {KEDA_PAUSED_REPLICAS: "0"}
        assert "llama-3-1-8b" not in {k for k, v in scaled_objects(run).items() if "annotations" in v["metadata"]}
        assert not [j for j in run.of_type(SMOKE_JOB) if "qwen2-5-72b" in j.name]
        actions = {s.plain_inputs["scheduledActionName"]: s.plain_inputs for s in run.of_type(SCHEDULE)}
        assert actions["h200-block-capacity-block-start"]["startTime"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = actions["h200-block-capacity-block-end"]
        assert end["startTime"] == (start + timedelta(days=7, minutes=-45)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (end["minSize"], end["maxSize"], end["desiredCapacity"]) == (0, 0, 0)


# --- every bound is checked at preview, with the numbers --------------------------------------------


def _rejected(config: dict) -> str:
    run = run_bad_config(config, preview=True)
    assert run.error is not None and run.of_type(DEPLOYMENT) == []
    return str(run.error)


def test_max_replicas_beyond_max_nodes_is_refused_with_the_node_count():
    config = prod_with(**{"llama-3-1-8b": {"minReplicas": 2, "maxReplicas": 8}})
    message = _rejected(config)
    assert "nodeGroups[0].maxNodes: 4 is too small" in message
    assert "llama-3-1-8b 8 x 2 GPUs, llama-3-1-70b 5 x 4 GPUs need 5 p5.48xlarge nodes" in message


def test_max_replicas_beyond_the_reservation_is_refused_with_its_size():
    config = prod_with(**{"qwen2-5-72b": {"minReplicas": 1, "maxReplicas": 6}})
    block = group_of(config, "h200-block")
    block["reservedInstances"] = 1
    message = _rejected(config)
    reservation = block["capacityReservationId"]
    assert f"{reservation} holds 1 instances but at maxReplicas qwen2-5-72b 6 x 2 GPUs need 2" in message


def test_min_above_max_is_refused():
    message = _rejected(prod_with(**{"llama-3-1-8b": {"minReplicas": 5, "maxReplicas": 3}}))
    assert "models[0].autoscaling: minReplicas 5 is above maxReplicas 3" in message


def test_scale_to_zero_must_be_asked_for_and_is_warned_with_its_cold_start():
    assert "scaleToZero: true" in _rejected(prod_with(**{"llama-3-1-8b": {"minReplicas": 0, "maxReplicas": 3}}))
    asked = {"minReplicas": 0, "maxReplicas": 4, "scaleToZero": True, "activationQuery": "sum(rate(up[2m]))"}
    run = run_config(prod_with(**{"qwen2-5-72b": asked}), preview=True)
    warning = next(m for level, m in run.logs if level == "warning" and "scales to zero" in m)
    load = run.outputs["plan"]["autoscaling"]["qwen2-5-72b"]["startupSeconds"]
    # h200-block has minNodes 0: a node comes first (~300 s).
    assert f"about {load + 300} s ({load} s server load from the plan" in warning


def test_a_fixed_count_beside_autoscaling_is_refused():
    config = prod_with(**{"llama-3-1-8b": {"minReplicas": 2, "maxReplicas": 6}})
    models_of(config)[0].pop("traffic")
    models_of(config)[0]["replicas"] = 4
    assert "replicas 4 is a fixed count but autoscaling is given" in _rejected(config)


def test_a_window_on_a_group_without_a_capacity_block_is_refused():
    config = stack_config("prod")
    group_of(config, "h100-reserved")["capacityBlock"] = {
        "start": "2027-01-01T00:00:00Z",
        "end": "2027-01-08T00:00:00Z",
    }
    assert "nodeGroups[0]: capacityBlock is a Capacity Block's window: it needs capacityType CAPACITY_BLOCK" in (
        _rejected(config)
    )


def test_the_cluster_autoscaler_must_match_a_created_clusters_version():
    config = stack_config("dev")
    config["gpu-inference:cluster"]["create"]["version"] = "1.31"
    models_of(config)[0].pop("replicas")
    models_of(config)[0]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 2}
    assert "cluster.create.version: 1.31 needs the Cluster Autoscaler 1.31.x" in _rejected(config)


def test_a_multi_node_model_scales_its_leader_worker_set():
    config = stack_config("multinode")
    group_of(config, "h100-efa")["maxNodes"] = 4
    models_of(config)[0].pop("replicas")
    models_of(config)[0]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 2}
    run = run_config(config, preview=True)
    assert run.error is None
    (lws,) = run.of_type(LWS)
    (scaled,) = scaled_objects(run).values()
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        lws.plain_inputs["apiVersion"],
        "LeaderWorkerSet",
        lws.plain_inputs["metadata"]["name"],
    )
    assert REPLICAS_FIELD in lws.ignore_changes
    for role in ("leaderTemplate", "workerTemplate"):
        template = lws.plain_inputs["spec"]["leaderWorkerTemplate"][role]
        assert template["metadata"]["annotations"][SAFE_TO_EVICT] == "false"


def test_karpenter_is_refused_until_it_is_wired_and_none_leaves_nodes_alone():
    config = prod_with()
    config["gpu-inference:autoscaling"] = {"nodeAutoscaler": "karpenter"}
    assert "autoscaling.nodeAutoscaler: karpenter is not wired in this stack yet" in _rejected(config)
    config["gpu-inference:autoscaling"] = {"nodeAutoscaler": "none"}
    run = run_config(config, preview=True)
    assert not [r for r in run.of_type(RELEASE) if r.plain_inputs["chart"] == "cluster-autoscaler"]
    assert len(run.of_type(SCALED_OBJECT)) == 3
    assert run.find(NODE_GROUP, "h100-reserved").ignore_changes == []
    assert run.find(NODE_GROUP, "h200-block").ignore_changes == ["scalingConfig.desiredSize"]  # its schedule's
    for workload in deployments(run).values():
        assert SAFE_TO_EVICT not in workload.plain_inputs["spec"]["template"]["metadata"]["annotations"]


def test_a_capacity_block_too_short_to_drain_is_refused():
    config = stack_config("prod")
    group_of(config, "h200-block")["capacityBlock"] = {"start": "2027-01-01T11:30:00Z", "end": "2027-01-01T12:00:00Z"}
    message = _rejected(config)
    assert "nodeGroups[1].capacityBlock: h200-block: the Capacity Block" in message
    assert "is shorter than the 45 minutes kept free before its end" in message
