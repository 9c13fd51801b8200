"""Placement: node packing and node counts (pure, no Pulumi)."""

import pytest

from stack.config import ConfigError, parse_config
from stack.placement import pack_nodes, place


@pytest.mark.parametrize(
    "pods, nodes",
    [([], 0), ([1] * 8, 1), ([1] * 9, 2), ([4, 4, 4], 2), ([8, 1], 2), ([4, 2, 1, 1], 1), ([2] * 3 + [4], 2)],
)
def test_pack_nodes(pods, nodes):
    assert pack_nodes(pods, 8) == nodes


def test_pod_larger_than_a_node_is_refused():
    with pytest.raises(ValueError):
        pack_nodes([16], 8)


def config(models, max_nodes=2, min_nodes=0):
    return parse_config(
        {
            "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
            "nodeGroups": [
                {"name": "h100", "instanceType": "p5.48xlarge", "minNodes": min_nodes, "maxNodes": max_nodes}
            ],
            "models": models,
        }
    )


def test_replicas_scale_desired_nodes_and_max_nodes_bounds_them():
    model = {"name": "m", "model": "llama-3.1-70b", "maxModelLen": 8192, "tensorParallelSize": 8}
    assert place(config([{**model, "replicas": 2}])).node_groups[0].desired_nodes == 2
    with pytest.raises(ConfigError) as error:
        place(config([{**model, "replicas": 3}]))
    assert "nodeGroups[0].maxNodes: 2 is too small: m (3 x 8 GPUs) need 3 p5.48xlarge nodes" in str(error.value)


def test_min_nodes_is_a_floor():
    assert place(config([], min_nodes=2)).node_groups[0].desired_nodes == 2
