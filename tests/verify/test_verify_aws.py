"""verify.aws catches wrong enums and broken limits in AWS inputs (the camelCase keys synth writes)."""

import pytest

from tests.verify.conftest import only, rendered_resource
from verify import aws

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


@pytest.fixture
def group(runs):
    return rendered_resource(runs, "prod", NODE_GROUP, "h200-block")


def test_rendered_node_group_passes(group):
    assert aws.check_resource(NODE_GROUP, group, "h200-block") == []


def test_wrong_taint_effect(group):
    group["taints"][0]["effect"] = "NO_SCHEDULE_X"
    found = only(
        aws.check_resource(NODE_GROUP, group, "h200-block"),
        "taints[0].effect",
        "'NO_SCHEDULE_X'",
        "eks TaintEffect",
        "NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE",
    )
    assert str(found[0]).startswith("aws:eks/nodeGroup:NodeGroup h200-block: ")


def test_kubernetes_spelling_of_the_effect_is_wrong_for_eks(group):
    group["taints"][0]["effect"] = "NoSchedule"
    only(aws.check_resource(NODE_GROUP, group, "g"), "taints[0].effect", "NO_SCHEDULE")


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("amiType", "AL2023_x86_64_GPU", ["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"]),
        ("capacityType", "RESERVED", ["ON_DEMAND, SPOT, CAPACITY_BLOCK"]),
    ],
)
def test_wrong_eks_enums(group, field, value, words):
    group[field] = value
    only(aws.check_resource(NODE_GROUP, group, "g"), field, repr(value), *words)


def test_instance_type_not_in_ec2(group):
    group["instanceTypes"] = ["p5e.48xlarg"]
    only(aws.check_resource(NODE_GROUP, group, "g"), "instanceTypes[0]", "ec2 InstanceType", "p5e.48xlarge")


def test_instance_type_outside_the_catalog(group):
    group["instanceTypes"] = ["p5.4xlarge"]  # in ec2's enum, but 1 GPU
    violations = aws.check_resource(NODE_GROUP, group, "g")
    assert not [v for v in violations if "InstanceType in AWS" in v.message]
    only(violations, "instanceTypes[0]", "'p5.4xlarge'", "8-GPU SXM", "p5.48xlarge")


def test_system_groups_may_use_any_ec2_type(runs):
    system = rendered_resource(runs, "dev", NODE_GROUP, "cluster-system")
    assert system["instanceTypes"] == ["m7i.large"] and aws.check_resource(NODE_GROUP, system, "cluster-system") == []


def test_too_long_label_and_taint(group):
    group["labels"]["gpu-inference.io/" + "x" * 60] = "v"
    group["labels"]["team"] = "y" * 64
    group["taints"].append({"key": "k" * 64, "value": "v", "effect": "NO_EXECUTE"})
    violations = aws.check_resource(NODE_GROUP, group, "g")
    key = "gpu-inference.io/" + "x" * 60
    only(violations, f"labels[{key!r}] (key)", "eks labelKey allows at most 63")
    only(violations, "labels['team']", "eks labelValue allows at most 63")
    only(violations, "taints[1].key", "eks taintKey allows at most 63")


def test_too_many_labels_and_taints(group):
    group["labels"] = {f"l{i}": "v" for i in range(51)}
    group["taints"] = [{"key": f"t{i}", "value": "v", "effect": "NO_SCHEDULE"} for i in range(51)]
    violations = aws.check_resource(NODE_GROUP, group, "g")
    only(violations, "labels", "51 labels", "at most 50")
    only(violations, "taints", "51 taints", "at most 50")


def test_scaling_and_capacity_block_rules(group):
    group["scalingConfig"] = {"minSize": 2, "desiredSize": 1, "maxSize": 0}
    del group["launchTemplate"]
    violations = aws.check_resource(NODE_GROUP, group, "g")
    only(violations, "scalingConfig", "minSize <= desiredSize <= maxSize")
    only(violations, "scalingConfig.maxSize", "below the minimum 1")
    only(violations, "launchTemplate", "CAPACITY_BLOCK needs a launch template")


def test_launch_template_enums(runs):
    template = rendered_resource(runs, "prod", LAUNCH_TEMPLATE, "h100-reserved-lt")
    assert aws.check_resource(LAUNCH_TEMPLATE, template, "lt") == []
    template["networkInterfaces"][1]["interfaceType"] = "efa-express"
    template["blockDeviceMappings"][0]["ebs"]["volumeType"] = "gp4"
    template["metadataOptions"]["httpTokens"] = "always"
    template["instanceMarketOptions"] = {"marketType": "capacity_block"}
    violations = aws.check_resource(LAUNCH_TEMPLATE, template, "lt")
    only(violations, "networkInterfaces[1].interfaceType", "'efa-express'", "interface, efa, efa-only")
    only(violations, "blockDeviceMappings[0].ebs.volumeType", "'gp4'", "gp3")
    only(violations, "metadataOptions.httpTokens", "optional, required")
    only(violations, "instanceMarketOptions.marketType", "capacity-block")


def test_placement_strategy(runs):
    placement = rendered_resource(runs, "multinode", "aws:ec2/placementGroup:PlacementGroup")
    placement["strategy"] = "clustered"
    only(
        aws.check_resource("aws:ec2/placementGroup:PlacementGroup", placement, "pg"),
        "strategy",
        "cluster, spread, partition",
    )


def test_unknown_values_are_skipped(group):
    group["amiType"] = "<computed>"
    group["instanceTypes"] = ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"]  # pulumi-policy's unknown string
    assert aws.check_resource(NODE_GROUP, group, "g") == []
