"""Cost figures of the production stack, worked out by hand from the price table.

Pulumi.prod.yaml: group h100-reserved (p5.48xlarge, ON_DEMAND, 8 GPUs/node) holds llama-3-1-8b
(4 replicas, planned at TP=2) and llama-3-1-70b (3 replicas, TP=4); group h200-block
(p5e.48xlarge, CAPACITY_BLOCK) holds qwen2-5-72b (2 replicas, TP=2).
"""

from __future__ import annotations

import pytest

from sizing.prices import ON_DEMAND, PriceTable
from stack.autoscaling_config import parse_autoscaling
from stack.cost import pack_free, stack_cost
from tests.stack.autoscaling_fixtures import placement, placement_with

P5 = ON_DEMAND["p5.48xlarge"].usd_per_hour  # 55.04 in the table
P5E = ON_DEMAND["p5e.48xlarge"].usd_per_hour  # 63.30; the table has no p5e Capacity Block rate


def test_the_layout_this_test_assumes():
    plan = {m.name: (m.node_group, m.plan.gpus_per_pod, m.config.replicas) for m in placement().models}
    assert plan == {
        "llama-3-1-8b": ("h100-reserved", 2, 4),
        "llama-3-1-70b": ("h100-reserved", 4, 3),
        "qwen2-5-72b": ("h200-block", 2, 2),
    }


def test_prod_fixed_replicas_by_hand():
    cost = stack_cost(placement())
    groups = {g.name: g for g in cost.node_groups}
    # h100: 4x2 + 3x4 = 20 GPUs -> 3 nodes of 8 (4 idle); h200: 2x2 = 4 GPUs -> 1 node (4 idle).
    assert (groups["h100-reserved"].nodes_min, groups["h100-reserved"].idle_gpus_min) == (3, 4)
    assert (groups["h200-block"].nodes_min, groups["h200-block"].idle_gpus_min) == (1, 4)
    assert groups["h100-reserved"].usd_per_hour_min == pytest.approx(3 * 55.04)
    assert groups["h200-block"].usd_per_hour_min == pytest.approx(63.30)
    assert cost.usd_per_hour_min == pytest.approx(3 * 55.04 + 63.30) == cost.usd_per_hour_max
    assert cost.idle_gpus_min == 8
    models = {m.name: m for m in cost.models}
    # A TP=2 replica is a quarter of a p5: 55.04 / 4 = 13.76 $/h; four of them 55.04.
    assert models["llama-3-1-8b"].usd_per_replica_hour == pytest.approx(13.76)
    assert models["llama-3-1-8b"].usd_per_hour_max == pytest.approx(55.04)
    assert models["llama-3-1-70b"].usd_per_hour_max == pytest.approx(3 * 55.04 / 2)
    assert (P5, P5E) == (55.04, 63.30)


def test_autoscaled_bounds_move_nodes_and_dollars():
    bounds = {"llama-3-1-8b": parse_autoscaling({"minReplicas": 1, "maxReplicas": 6}, "x")}
    cost = stack_cost(placement(), bounds)
    group = next(g for g in cost.node_groups if g.name == "h100-reserved")
    # min: 1x2 + 3x4 = 14 GPUs -> 2 nodes (also minNodes 2); max: 6x2 + 12 = 24 -> 3 nodes, none idle.
    assert (group.nodes_min, group.nodes_max) == (2, 3)
    assert (group.idle_gpus_min, group.idle_gpus_max) == (2, 0)
    assert (group.usd_per_hour_min, group.usd_per_hour_max) == (pytest.approx(110.08), pytest.approx(165.12))
    model = next(m for m in cost.models if m.name == "llama-3-1-8b")
    assert (model.usd_per_hour_min, model.usd_per_hour_max) == (pytest.approx(13.76), pytest.approx(82.56))


def test_idle_gpus_come_with_what_would_use_them():
    cost = stack_cost(placement())
    h200 = next(g for g in cost.node_groups if g.name == "h200-block")
    assert any("2 more replica(s) of qwen2-5-72b" in s for s in h200.suggestions)
    assert any("Capacity Block rate" in n for n in cost.notes)
    assert "228.42" in cost.table()


def test_a_lonely_tp2_model_leaves_six_gpus_idle_and_a_cheaper_packing_is_named():
    def edit(raw):
        raw["nodeGroups"].append(
            {
                "name": "h100-extra",
                "instanceType": "p5.48xlarge",
                "maxNodes": 2,
                "subnetIds": ["subnet-0c1d2e3f4a5b60011"],
            }
        )
        raw["models"][0]["nodeGroup"] = "h100-extra"
        raw["models"][0]["replicas"] = 1

    cost = stack_cost(placement_with("prod", edit))
    extra = next(g for g in cost.node_groups if g.name == "h100-extra")
    assert (extra.nodes_min, extra.idle_gpus_min) == (1, 6)
    reserved = next(g for g in cost.node_groups if g.name == "h100-reserved")
    # llama-3-1-70b alone: 3x4 = 12 GPUs -> 2 nodes, 4 idle: the 8B's one TP=2 pod fits there.
    assert any("moving llama-3-1-8b" in s and "saves 1 node(s), $55.04/h" in s for s in reserved.suggestions)


def test_overrides_replace_the_catalog_price():
    prices = PriceTable().with_overrides(
        usd_per_hour={"p5.48xlarge": 40.0}, capacity_block_usd_per_hour={"p5e.48xlarge": 30.0}
    )
    cost = stack_cost(placement(), prices=prices)
    assert cost.usd_per_hour_min == pytest.approx(3 * 40.0 + 30.0)
    assert not cost.notes or all("Capacity Block rate" not in n for n in cost.notes)


def test_pack_free_is_first_fit_decreasing():
    assert pack_free([2, 4, 4, 2, 2], 8) == [0, 2]
    assert pack_free([], 8) == []


def test_a_reservation_bills_all_its_instances_launched_or_not():
    p5 = ON_DEMAND["p5.48xlarge"].usd_per_hour
    cost = stack_cost(placement(), reservation_instances={"h100-reserved": 5})
    group = next(g for g in cost.node_groups if g.name == "h100-reserved")
    # 4 x 2 GPUs + 3 x 4 GPUs = 20 GPUs -> 3 nodes launched, but the reservation bills 5.
    assert (group.nodes_min, group.usd_per_hour_min, group.usd_per_hour_max) == (3, 5 * p5, 5 * p5)
    assert group.idle_gpus_min == 3 * 8 - 20
    assert any("bills its 5 reserved instances" in note for note in cost.notes)
