"""The cluster as registered after a mocked run: NetworkPolicy enforcement and aws-node's
credentials on created clusters, the declared assumptions on adopted ones (issue 17, items 3, 5)."""

import json

import pytest

from tests.harness import (
    ATTACHMENT,
    LAUNCH_TEMPLATE,
    NETPOL,
    NODE_GROUP,
    ROLE,
    run_config,
    run_stack,
    stack_config,
)

CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
ADDON = "aws:eks/addon:Addon"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]
NOT_DECLARED = "networkPolicyEnforced is not declared"


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", ["dev", "multinode"])
def test_created_clusters_enforce_the_network_policies_they_render(stack, preview):
    """pulumi-eks passes enableNetworkPolicy to the VPC CNI add-on only when it is set
    (VpcCniAddon, mergeConfigurationValues); the add-on's default is off."""
    run = run_stack(stack, preview)
    assert run.of_type(NETPOL)
    (cluster,) = run.of_type("eks:index:Cluster")
    assert cluster.plain_inputs["vpcCniOptions"]["enableNetworkPolicy"] is True
    assert run.outputs["clusterAssumptions"]["networkPolicyEnforced"] is True
    assert not [m for _, m in run.logs if NOT_DECLARED in m]


def test_aws_node_gets_the_cni_policy_through_pod_identity_before_any_node_joins():
    run = run_stack("dev", False)
    (association,) = run.of_type(POD_IDENTITY)
    inputs = association.plain_inputs
    assert (inputs["namespace"], inputs["serviceAccount"]) == ("kube-system", "aws-node")
    (role,) = [r for r in run.of_type(ROLE) if r.name == "cluster-aws-node-role"]
    assert role.urn in association.dependencies
    (statement,) = json.loads(role.plain_inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    attached = [r.plain_inputs["policyArn"] for r in run.of_type(ATTACHMENT) if r.name.startswith("cluster-aws-node-")]
    assert attached == [CNI_POLICY]
    (agent,) = [r for r in run.of_type(ADDON) if r.plain_inputs["addonName"] == "eks-pod-identity-agent"]
    for group in run.of_type(NODE_GROUP):  # system and GPU nodes start after both exist
        assert {association.urn, agent.urn} <= set(group.dependencies), group.name


def test_system_nodes_block_pods_from_instance_metadata_too():
    run = run_stack("dev", False)
    (system,) = [
        r for r in run.of_type(NODE_GROUP) if r.plain_inputs["labels"].get("gpu-inference.io/role") == "system"
    ]
    assert "diskSize" not in system.inputs and "launchTemplate" in system.inputs
    (template,) = [r for r in run.of_type(LAUNCH_TEMPLATE) if "system" in r.name]
    metadata = template.plain_inputs["metadataOptions"]
    assert metadata["httpTokens"] == "required" and int(metadata["httpPutResponseHopLimit"]) == 1
    assert int(template.plain_inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"]) == 50


@pytest.mark.parametrize("preview", MODES)
def test_adopted_cluster_without_declared_enforcement_is_warned_about(preview):
    run = run_stack("prod", preview)
    assert run.of_type(NETPOL)
    assert [m for level, m in run.logs if level == "warning" and NOT_DECLARED in m]
    assert run.outputs["clusterAssumptions"]["networkPolicyEnforced"] is None


@pytest.mark.parametrize("declared", [True, False])
def test_adopted_cluster_states_what_it_declares(declared):
    config = stack_config("prod")
    config["gpu-inference:cluster"]["existing"]["networkPolicyEnforced"] = declared
    run = run_config(config, preview=True)
    assert not [m for _, m in run.logs if NOT_DECLARED in m]
    assert bool([m for _, m in run.logs if "NetworkPolicies are stored but not enforced" in m]) is (not declared)
    assert run.outputs["clusterAssumptions"]["networkPolicyEnforced"] is declared
