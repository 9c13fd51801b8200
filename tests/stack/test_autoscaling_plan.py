from __future__ import annotations

import math

import pytest

from stack.autoscaling_config import HPA_MAX_POLICY_PERIOD_SECONDS, HPA_MAX_STABILIZATION_SECONDS, parse_autoscaling
from stack.autoscaling_plan import concurrency_per_replica, plan_autoscaling
from tests.stack.autoscaling_fixtures import placement


def model(name: str):
    return next(m for m in placement().models if m.name == name)


def test_queue_target_is_a_quarter_of_what_one_replica_holds():
    m = model("llama-3-1-70b")
    held = min(m.plan.settings.max_num_seqs, math.floor(m.plan.estimate.max_concurrency))
    assert concurrency_per_replica(m) == held
    auto = plan_autoscaling(m, parse_autoscaling({"minReplicas": 1, "maxReplicas": 3}, "x"), startup_s=1500)
    assert auto.target_queue_length == math.ceil(held / 4) and auto.queue_target_from_plan
    assert auto.target_kv_cache_usage == 0.8


def test_targets_from_config_win():
    auto = plan_autoscaling(
        model("llama-3-1-8b"),
        parse_autoscaling({"minReplicas": 1, "maxReplicas": 3, "targetQueueLength": 3, "targetKvCacheUsage": 0.6}, "x"),
        startup_s=300,
    )
    assert (auto.target_queue_length, auto.target_kv_cache_usage, auto.queue_target_from_plan) == (3, 0.6, False)


def test_windows_follow_the_load_time_within_kubernetes_limits():
    bounds = parse_autoscaling({"minReplicas": 1, "maxReplicas": 3}, "x")
    quick = plan_autoscaling(model("llama-3-1-8b"), bounds, startup_s=400)
    assert quick.scale_up_period_s == 400
    assert quick.scale_down_stabilization_s == 800  # twice the load time
    slow = plan_autoscaling(model("llama-3-1-70b"), bounds, startup_s=2400)
    assert slow.scale_up_period_s == HPA_MAX_POLICY_PERIOD_SECONDS
    assert slow.scale_down_stabilization_s == HPA_MAX_STABILIZATION_SECONDS
    with pytest.raises(ValueError, match="startup seconds"):
        plan_autoscaling(model("llama-3-1-8b"), bounds, startup_s=0)


def test_created_with_at_least_one_replica_so_the_first_up_proves_the_server():
    bounds = parse_autoscaling({"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True, "activationQuery": "up"}, "x")
    auto = plan_autoscaling(model("llama-3-1-8b"), bounds, startup_s=300)
    assert (auto.min_replicas, auto.initial_replicas) == (0, 1)
