"""Node autoscaling: the Cluster Autoscaler's tags, priorities, IAM and chart (default), and
Karpenter's NodePool/EC2NodeClass against the pinned CRDs (offered)."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest

from components.gpu_node_group import node_group_options, node_labels
from components.node_autoscaling import (
    CLUSTER_AUTOSCALER_CHART_VERSION,
    CLUSTER_AUTOSCALER_IMAGE_TAG,
    CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
    PRIORITY_RESERVED,
    SAFE_TO_EVICT,
    cluster_autoscaler_policy,
    cluster_autoscaler_version_problem,
    ec2_node_class,
    expander_priorities,
    node_pool,
    node_template_tags,
    pool_gpu_limit,
    server_pod_annotations,
)
from stack import mockrun
from stack.autoscaling_config import parse_autoscaling
from tests.stack.autoscaling_fixtures import placement, placement_with

TEMPLATE = "k8s.io/cluster-autoscaler/node-template"


def group(name: str):
    return placement().node_group(name)


def test_scale_from_zero_sees_the_nodes_labels_taint_and_gpus():
    h200 = group("h200-block")
    tags = node_template_tags(h200)
    for key, value in node_labels(h200).items():
        assert tags[f"{TEMPLATE}/label/{key}"] == value
    assert tags[f"{TEMPLATE}/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert tags[f"{TEMPLATE}/resources/nvidia.com/gpu"] == "8"
    assert f"{TEMPLATE}/resources/vpc.amazonaws.com/efa" not in tags
    efa = node_template_tags(group("h100-reserved"))
    assert efa[f"{TEMPLATE}/resources/vpc.amazonaws.com/efa"] == "32"


def test_paid_for_capacity_is_used_first():
    priorities = expander_priorities(placement().node_groups)
    assert priorities[str(PRIORITY_RESERVED)] == ["^eks-h100-reserved-.*", "^eks-h200-block-.*"]
    assert list(priorities)[0] == str(PRIORITY_RESERVED) and priorities["1"] == [".*"]


def test_policy_changes_only_this_clusters_groups():
    policy = json.loads(cluster_autoscaler_policy("platform-prod"))
    write = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert write["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/platform-prod": "owned"}}


def test_policy_passes_parliament_and_its_arns_match_what_eks_creates():
    import fnmatch

    import parliament

    text = cluster_autoscaler_policy("platform-prod")
    assert [(f.issue, f.detail) for f in parliament.analyze_policy_string(text).findings] == []
    statements = json.loads(text)["Statement"]
    write = next(s for s in statements if "autoscaling:SetDesiredCapacity" in s["Action"])
    read_group = next(s for s in statements if s["Action"] == ["eks:DescribeNodegroup"])
    # EKS names a managed node group's Auto Scaling group eks-<node group>-<uuid>.
    asg = (
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0f1e2d3c-aaaa-bbbb-cccc-123456789012:"
        "autoScalingGroupName/eks-h100-reserved-2ac7d1a0-1111-2222-3333-444455556666"
    )
    assert fnmatch.fnmatchcase(asg, write["Resource"])
    group = "arn:aws:eks:us-east-1:123456789012:nodegroup/platform-prod/h100-reserved/2ac7d1a0-1111-2222-3333"
    assert fnmatch.fnmatchcase(group, read_group["Resource"])
    assert not fnmatch.fnmatchcase(group.replace("platform-prod", "other"), read_group["Resource"])


def test_servers_are_never_evicted_by_the_node_autoscaler():
    assert server_pod_annotations("clusterAutoscaler") == {SAFE_TO_EVICT: "false"}
    assert server_pod_annotations("karpenter") == {"karpenter.sh/do-not-disrupt": "true"}
    assert node_group_options(__import__("pulumi").ResourceOptions(), True).ignore_changes == [
        "scalingConfig.desiredSize"
    ]


def test_pool_gpu_limit_is_max_replicas_times_gpus_per_replica():
    bounds = {"llama-3-1-8b": parse_autoscaling({"minReplicas": 1, "maxReplicas": 6}, "x")}
    # 8B: 6 x 2 GPUs; 70B (fixed 3 replicas) 3 x 4 GPUs.
    assert pool_gpu_limit(placement(), "h100-reserved", bounds) == 6 * 2 + 3 * 4
    assert pool_gpu_limit(placement(), "h200-block", bounds) == 2 * 2


def karpenter_objects():
    bounds = {"llama-3-1-8b": parse_autoscaling({"minReplicas": 1, "maxReplicas": 6}, "x")}
    out = []
    for g in placement().node_groups:
        out.append(node_pool(g, pool_gpu_limit(placement(), g.name, bounds)))
        out.append(
            ec2_node_class(
                g,
                cluster_name="platform-prod",
                node_role="gpu-nodes",
                ami_alias="al2023@v20251120",
                placement_group="pg-1",
            )
        )
    return out


def test_karpenter_keeps_reservations_and_efa():
    pool, node_class, block_pool, block_class = karpenter_objects()
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": "24"}
    requirements = {r["key"]: r["values"] for r in pool["spec"]["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["reserved"]
    reserved, block = (g.config.capacity_reservation_id for g in placement().node_groups)
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [{"id": reserved}]
    efa = [i for i in node_class["spec"]["networkInterfaces"] if i["interfaceType"] == "efa-only"]
    assert len(efa) == 32 and len({i["networkCardIndex"] for i in efa}) == 32
    interfaces = node_class["spec"]["networkInterfaces"]
    # The CRD's CEL rules (not evaluated by the schema check): a primary ENA on card 0 index 0,
    # unique (card, index) pairs, at most one EFA device per card.
    assert {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"} in interfaces
    assert len({(i["networkCardIndex"], i["deviceIndex"]) for i in interfaces}) == len(interfaces)
    assert node_class["spec"]["placementGroupSelector"] == {"name": "pg-1"}
    assert block_class["spec"]["capacityReservationSelectorTerms"] == [{"id": block}]
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"


def test_karpenter_objects_match_the_pinned_crds():
    crds = pytest.importorskip(
        "verify.crds", reason="verify/crds.py (Karpenter v1.14.1 CRDs) arrives with branch verify"
    )
    for obj in karpenter_objects():
        assert crds.validate_custom_resource(obj) == [], obj["kind"]
    broken = copy.deepcopy(karpenter_objects()[1])
    broken["spec"]["networkInterfaces"][1]["interfaceType"] = "efa"
    assert crds.validate_custom_resource(broken)


PROGRAM = textwrap.dedent(
    """
    import pulumi_kubernetes as k8s
    from components.node_autoscaling import ClusterAutoscaler, ClusterAutoscalerArgs
    from tests.stack.autoscaling_fixtures import placement

    groups = list(placement().node_groups)
    provider = k8s.Provider("k8s", kubeconfig="{}")
    ClusterAutoscaler(
        "ca",
        ClusterAutoscalerArgs(
            cluster_name="platform-prod",
            region="us-east-1",
            groups=groups,
            asg_names={g.name: f"eks-{g.name}-0001" for g in groups},
            provider=provider,
        ),
    )
    """
)


def test_cluster_autoscaler_component_under_mocks(tmp_path):
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM)
    run = mockrun.run_program({}, program=program, stack="t")
    association = run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")[0].plain_inputs
    assert association["serviceAccount"] == CLUSTER_AUTOSCALER_SERVICE_ACCOUNT
    assert association["namespace"] == "kube-system"
    tags = run.of_type("aws:autoscaling/tag:Tag")
    expected = sum(len(node_template_tags(g)) for g in placement().node_groups)
    assert len(tags) == expected
    assert {t.plain_inputs["autoscalingGroupName"] for t in tags} == {"eks-h100-reserved-0001", "eks-h200-block-0001"}
    policy = json.loads(run.of_type("aws:iam/rolePolicy:RolePolicy")[0].plain_inputs["policy"])
    assert "aws:ResourceTag/k8s.io/cluster-autoscaler/platform-prod" in json.dumps(policy)
    release = run.of_type("kubernetes:helm.sh/v3:Release")[0].plain_inputs
    assert release["version"] == CLUSTER_AUTOSCALER_CHART_VERSION
    assert release["values"]["image"]["tag"] == CLUSTER_AUTOSCALER_IMAGE_TAG
    assert release["values"]["autoDiscovery"]["clusterName"] == "platform-prod"
    assert release["values"]["expanderPriorities"]["100"] == ["^eks-h100-reserved-.*", "^eks-h200-block-.*"]


def test_one_lonely_group_still_gets_a_priority():
    def edit(raw):
        raw["nodeGroups"][1]["capacityType"] = "ON_DEMAND"
        for key in ("capacityReservationId", "capacityBlock", "reservedInstances"):
            raw["nodeGroups"][1].pop(key)

    priorities = expander_priorities(placement_with("prod", edit).node_groups)
    assert priorities["50"] == ["^eks-h200-block-.*"]


def test_autoscaler_minor_must_match_the_clusters():
    minor = ".".join(CLUSTER_AUTOSCALER_IMAGE_TAG.lstrip("v").split(".")[:2])
    assert cluster_autoscaler_version_problem(minor) is None
    assert cluster_autoscaler_version_problem(None) is None
    problem = cluster_autoscaler_version_problem("1.99")
    assert problem.startswith("cluster.create.version: 1.99") and CLUSTER_AUTOSCALER_IMAGE_TAG in problem
