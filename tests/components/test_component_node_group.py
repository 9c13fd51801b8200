"""GPU node groups as registered after a mocked run: node credentials, EFA interfaces, placement
groups against reservations and Capacity Blocks (issue 17, items 4 and 5)."""

import json

import pytest

from tests.harness import (
    ATTACHMENT,
    LAUNCH_TEMPLATE,
    PLACEMENT_GROUP,
    ROLE,
    check_invariants,
    node_group_registrations,
    run_bad_config,
    run_config,
    run_stack,
    stack_config,
)

CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
STACKS = ["dev", "prod", "multinode"]
MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


def _children(run, group: str, type_: str):
    component = node_group_registrations(run)[group].parent
    return [r for r in run.of_type(type_) if r.parent == component]


def _launch_template(run, group: str) -> dict:
    (template,) = _children(run, group, LAUNCH_TEMPLATE)
    return template.plain_inputs


def _policies(run, group: str) -> set[str]:
    return {r.plain_inputs["policyArn"] for r in _children(run, group, ATTACHMENT)}


def _group(config: dict, name: str) -> dict:
    return next(g for g in config["gpu-inference:nodeGroups"] if g["name"] == name)


@pytest.mark.parametrize("stack", STACKS)
def test_pods_cannot_reach_the_node_role_through_instance_metadata(stack):
    """Every GPU group launches from a template requiring IMDSv2 with hop limit 1: a pod's token
    request (one hop past the node) never returns. Without a template EKS's own allows 2."""
    run = run_stack(stack, False)
    for name, group in node_group_registrations(run).items():
        assert "launchTemplate" in group.inputs, name
        metadata = _launch_template(run, name)["metadataOptions"]
        assert metadata["httpTokens"] == "required", name
        assert int(metadata["httpPutResponseHopLimit"]) == 1, name


@pytest.mark.parametrize("stack", ["dev", "multinode"])
def test_created_clusters_keep_the_cni_policy_off_gpu_node_roles(stack):
    run = run_stack(stack, False)
    for name in node_group_registrations(run):
        policies = _policies(run, name)
        assert CNI_POLICY not in policies, name
        assert SSM_POLICY in policies, name  # SSM Session Manager for debugging nodes


def test_adopted_cluster_puts_the_cni_policy_where_the_config_says():
    run = run_stack("prod", False)  # awsNodeCredentials defaults to nodeRole
    for name in node_group_registrations(run):
        assert {CNI_POLICY, SSM_POLICY} <= _policies(run, name)
    config = stack_config("prod")
    config["gpu-inference:cluster"]["existing"]["awsNodeCredentials"] = "serviceAccount"
    run = run_config(config)
    for name in node_group_registrations(run):
        assert CNI_POLICY not in _policies(run, name) and SSM_POLICY in _policies(run, name)
    assert run.outputs["clusterAssumptions"]["awsNodeCredentials"] == "serviceAccount"


def test_node_roles_are_assumed_by_ec2_only():
    run = run_stack("dev", False)
    for role in _children(run, "h100", ROLE):
        policy = json.loads(role.plain_inputs["assumeRolePolicy"])
        assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "ec2.amazonaws.com"}]


@pytest.mark.parametrize("preview", MODES)
def test_efa_cards_after_the_first_are_efa_only(preview):
    """EC2 User Guide, EFA configuration for P5 (use case 1): EFA with ENA on card 0, EFA-only
    (no IP address) on device 1 of cards 1..31; otherwise each node takes 32 subnet IPs."""
    run = run_stack("multinode", preview)
    interfaces = _launch_template(run, "h100-efa")["networkInterfaces"]
    assert [(int(i["networkCardIndex"]), int(i["deviceIndex"]), i["interfaceType"]) for i in interfaces] == [
        (0, 0, "efa")
    ] + [(card, 1, "efa-only") for card in range(1, 32)]


@pytest.mark.parametrize("preview", MODES)
def test_a_reservation_is_never_combined_with_a_placement_group_the_stack_creates(preview):
    """EC2 cannot move an existing Capacity Reservation into a placement group (EC2 User Guide,
    'Capacity Reservations in cluster placement groups', Limitations): prod's reserved EFA group as
    first written (no placementGroup key) must not get one."""
    config = stack_config("prod")
    _group(config, "h100-reserved").pop("placementGroup", None)
    run = run_config(config, preview=preview)
    assert not _children(run, "h100-reserved", PLACEMENT_GROUP)
    lt = _launch_template(run, "h100-reserved")
    assert "placement" not in lt
    assert lt["capacityReservationSpecification"]["capacityReservationTarget"]["capacityReservationId"]


def test_asking_to_create_a_placement_group_for_a_reservation_is_refused_with_the_ec2_rule():
    config = stack_config("prod")
    _group(config, "h100-reserved")["placementGroup"] = "create"
    run = run_bad_config(config, preview=True)
    message = str(run.error)
    assert "nodeGroups[0]" in message and "placementGroup create cannot be used with capacityReservationId" in message
    assert "Capacity Reservations in cluster placement groups" in message
    assert not run.registrations or not run.of_type(PLACEMENT_GROUP)


@pytest.mark.parametrize("preview", MODES)
def test_efa_on_a_capacity_block_gets_no_placement_group(preview):
    """A Capacity Block's instances are co-located already; AWS ParallelCluster refuses placement
    groups with Capacity Blocks (aws-parallelcluster#6311)."""
    config = stack_config("prod")
    _group(config, "h200-block")["efa"] = True
    run = run_config(config, preview=preview)
    assert not _children(run, "h200-block", PLACEMENT_GROUP)
    lt = _launch_template(run, "h200-block")
    assert "placement" not in lt
    assert lt["instanceMarketOptions"]["marketType"] == "capacity-block"
    assert len(lt["networkInterfaces"]) == 32


@pytest.mark.parametrize("placement_group", ["create", "my-cluster-pg"])
def test_a_placement_group_on_a_capacity_block_is_refused_with_its_source(placement_group):
    config = stack_config("prod")
    _group(config, "h200-block").update(efa=True, placementGroup=placement_group)
    message = str(run_bad_config(config, preview=True).error)
    assert "nodeGroups[1]" in message and "CAPACITY_BLOCK" in message
    assert "aws-parallelcluster#6311" in message


@pytest.mark.parametrize("preview", MODES)
def test_a_reservation_launches_into_the_placement_group_it_was_created_in(preview):
    config = stack_config("prod")
    _group(config, "h100-reserved")["placementGroup"] = "p5-reserved-cpg"
    run = run_config(config, preview=preview)
    assert not _children(run, "h100-reserved", PLACEMENT_GROUP)
    assert _launch_template(run, "h100-reserved")["placement"] == {"groupName": "p5-reserved-cpg"}


@pytest.mark.parametrize("preview", MODES)
def test_an_efa_group_may_launch_into_an_existing_placement_group(preview):
    config = stack_config("multinode")
    _group(config, "h100-efa")["placementGroup"] = "shared-p5-cpg"
    run = run_config(config, preview=preview)
    assert not _children(run, "h100-efa", PLACEMENT_GROUP)
    assert _launch_template(run, "h100-efa")["placement"] == {"groupName": "shared-p5-cpg"}
    assert check_invariants(run) == []


@pytest.mark.parametrize("preview", MODES)
def test_an_on_demand_efa_group_still_gets_its_own_cluster_placement_group(preview):
    run = run_stack("multinode", preview)
    (group,) = _children(run, "h100-efa", PLACEMENT_GROUP)
    assert group.plain_inputs["strategy"] == "cluster"
    assert "groupName" in _launch_template(run, "h100-efa")["placement"]
