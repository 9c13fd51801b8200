"""stack.traffic_plan: the layouts a model's node groups and engine allow, priced as its groups are bought."""

from __future__ import annotations

import pytest

from sizing.prices import CAPACITY_BLOCK, ON_DEMAND
from stack.config import ConfigError, parse_config
from stack.placement import place

NIM_IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"
TRAFFIC = {"requestsPerSecond": 30, "inputTokens": 1000, "outputTokens": 200, "p95TpotS": 0.03}


def raw(groups=None, **model):
    return {
        "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
        "nodeGroups": groups or [{"name": "h100", "instanceType": "p5.48xlarge", "maxNodes": 2}],
        "models": [{"name": "m", "model": "llama-3.1-8b", "maxModelLen": 8192, "traffic": TRAFFIC, **model}],
    }


def traffic_of(config):
    (model,) = place(parse_config(config)).models
    return model, model.traffic


def test_an_engine_offering_some_tps_gets_only_those_and_says_why_of_the_rest():
    model, traffic = traffic_of(raw(engine={"type": "nim", "image": NIM_IMAGE, "profileTensorParallelSizes": [2, 4]}))
    assert model.plan.tensor_parallel_size in (2, 4)
    refused = {o.plan.tensor_parallel_size: o.rejected for o in traffic.options if o.rejected}
    assert set(refused) == {1, 8} and all("NIM offers TP [2, 4] only" == r for r in refused.values())
    assert any(note.startswith("engine nim: predicted with vLLM's scheduler") for note in traffic.notes)


def test_a_fixed_tp_is_the_only_layout_weighed():
    _, traffic = traffic_of(raw(tensorParallelSize=4))
    assert {o.plan.tensor_parallel_size for o in traffic.options} == {4}


def test_each_instance_type_is_priced_as_its_group_buys_it():
    groups = [
        {
            "name": "block",
            "instanceType": "p5.48xlarge",
            "maxNodes": 1,
            "capacityType": "CAPACITY_BLOCK",
            "capacityReservationId": "cr-0123456789abcdef0",
        },
        {"name": "a100", "instanceType": "p4d.24xlarge", "maxNodes": 4},
    ]
    _, traffic = traffic_of(raw(groups))
    node_price = {
        "p5.48xlarge": CAPACITY_BLOCK["p5.48xlarge"].usd_per_hour,
        "p4d.24xlarge": ON_DEMAND["p4d.24xlarge"].usd_per_hour,
    }
    for option in traffic.options:
        plan = option.plan
        assert option.usd_per_replica_hour == pytest.approx(node_price[plan.instance_type] * plan.gpus / 8)
    assert {o.plan.instance_type for o in traffic.options} == set(node_price), "both groups' GPUs are weighed"


def test_a_surge_rollout_gets_no_warning_about_the_peak():
    _, surging = traffic_of(raw(rollout="surge"))
    assert not any(note.startswith("rollout") for note in surging.notes)
    _, replacing = traffic_of(raw(traffic={**TRAFFIC, "requestsPerSecond": 200}))
    (note,) = [n for n in replacing.notes if n.startswith("rollout noSurge")]
    kept = (replacing.max_replicas - 1) * replacing.capacity.requests_per_s
    assert f"{replacing.max_replicas - 1} of {replacing.max_replicas} replicas ({kept:.1f} of 200" in note


def test_a_model_that_fits_nowhere_says_so_under_traffic():
    with pytest.raises(ConfigError) as caught:
        place(parse_config(raw(minConcurrency=100000)))
    (problem,) = caught.value.problems
    assert problem.startswith("models[0].traffic (m): llama-3.1-8b does not fit on H100-80GB with max_model_len=8192")
    assert "Tried:" in problem and "fewer than min_concurrency=100000" in problem
