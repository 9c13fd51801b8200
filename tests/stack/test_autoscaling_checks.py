from __future__ import annotations

from stack.autoscaling_checks import check_bounds
from stack.autoscaling_config import parse_autoscaling
from tests.stack.autoscaling_fixtures import placement

STARTUP = {"llama-3-1-8b": 300, "llama-3-1-70b": 1500, "qwen2-5-72b": 1600}


def bounds(**models):
    return {name.replace("_", "-"): parse_autoscaling(value, "x") for name, value in models.items()}


def test_within_bounds_passes():
    report = check_bounds(
        placement(), bounds(**{"llama-3-1-8b": {"minReplicas": 1, "maxReplicas": 6}}), startup_seconds=STARTUP
    )
    assert report.problems == [] and report.warnings == []


def test_max_replicas_beyond_max_nodes_names_the_numbers():
    # h100-reserved has maxNodes 4 (32 GPUs); 70B at TP=4: 3 + ... 8B at TP=2 x 12 = 24 GPUs + 12 = 36 -> 5 nodes.
    report = check_bounds(
        placement(), bounds(**{"llama-3-1-8b": {"minReplicas": 1, "maxReplicas": 12}}), startup_seconds=STARTUP
    )
    [line] = report.problems
    assert line.startswith("nodeGroups[0].maxNodes: 4 is too small")
    assert "llama-3-1-8b 12 x 2 GPUs" in line and "need 5 p5.48xlarge nodes" in line and "at least 5" in line


def test_max_replicas_beyond_the_reservation_names_its_size():
    report = check_bounds(
        placement(),
        bounds(**{"qwen2-5-72b": {"minReplicas": 1, "maxReplicas": 6}}),
        startup_seconds=STARTUP,
        reservation_instances={"h200-block": 1},
    )
    [line] = report.problems
    block = placement().node_groups[1].config.capacity_reservation_id
    assert line.startswith(f"nodeGroups[1].capacityReservationId: {block} holds 1 instances")
    assert "need 2 p5e.48xlarge nodes" in line and "reserve at least 2" in line


def test_scale_to_zero_is_warned_with_the_cold_start():
    report = check_bounds(
        placement(),
        bounds(**{"qwen2-5-72b": {"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True, "activationQuery": "up"}}),
        startup_seconds=STARTUP,
    )
    [line] = report.warnings
    # h200-block has minNodes 0: a node (~300 s) plus the 1600 s load.
    assert "qwen2-5-72b" in line and "about 1900 s" in line and "1600 s server load" in line
    assert report.problems == []
