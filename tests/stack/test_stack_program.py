"""The real __main__.py with each Pulumi.<stack>.yaml, in update and preview mode."""

import json

import pytest

from stack.mockrun import Unknown
from tests.harness import (
    LAUNCH_TEMPLATE,
    NODE_GROUP,
    PLACEMENT_GROUP,
    check_invariants,
    container,
    deployments,
    node_group_registrations,
    run_config,
    run_stack,
    stack_config,
)

STACKS = ["dev", "prod", "multinode"]
MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_invariant_holds(stack, preview):
    run = run_stack(stack, preview)
    assert run.registrations, "nothing registered"
    assert check_invariants(run) == []


@pytest.mark.parametrize("preview", MODES)
def test_dev_serves_both_llamas_at_32k_on_one_p5(preview):
    run = run_stack("dev", preview)
    models = run.outputs["models"]
    assert sorted(models) == ["llama-3-1-70b", "llama-3-1-8b"]
    assert {m["maxModelLen"] for m in models.values()} == {32768}
    assert run.outputs["nodeGroups"] == {
        "h100": {
            "instanceType": "p5.48xlarge",
            "gpu": "H100-80GB",
            "nodes": 1,
            "minNodes": 0,
            "maxNodes": 1,
            "efa": False,
        }
    }
    assert models["llama-3-1-70b"]["tensorParallelSize"] > 1
    assert run.outputs["clusterName"] == "gpu-inference-dev"


def test_dev_creates_an_api_mode_cluster_with_a_system_node_group():
    run = run_stack("dev", False)
    (cluster,) = run.of_type("eks:index:Cluster")
    assert cluster.remote and cluster.inputs["authenticationMode"] == "API"
    assert cluster.inputs["skipDefaultNodeGroup"] is True
    system = [r for r in run.of_type(NODE_GROUP) if r.plain_inputs["labels"].get("gpu-inference.io/role") == "system"]
    assert len(system) == 1
    assert "taints" not in system[0].inputs  # non-GPU pods land there
    assert cluster.urn in system[0].dependencies
    (coredns,) = [r for r in run.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "coredns"]
    assert system[0].urn in coredns.dependencies


def test_preview_leaves_computed_values_unknown_and_outputs_known():
    run = run_stack("dev", True)
    group = node_group_registrations(run)["h100"]
    assert isinstance(group.inputs["nodeRoleArn"], Unknown)  # as in a real preview
    assert not run.unknown_outputs


def test_update_resolves_the_node_role():
    run = run_stack("dev", False)
    group = node_group_registrations(run)["h100"]
    assert group.inputs["nodeRoleArn"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("preview", MODES)
def test_prod_reserved_efa_group(preview):
    run = run_stack("prod", preview)
    group = node_group_registrations(run)["h100-reserved"]
    (template,) = [r for r in run.of_type(LAUNCH_TEMPLATE) if r.parent == group.parent]
    lt = template.plain_inputs
    interfaces = lt["networkInterfaces"]
    assert len(interfaces) == 32  # p5.48xlarge: 32 EFA network cards
    assert [int(i["networkCardIndex"]) for i in interfaces] == list(range(32))
    assert int(interfaces[0]["deviceIndex"]) == 0 and all(int(i["deviceIndex"]) == 1 for i in interfaces[1:])
    # EC2 User Guide, EFA configuration for P5: EFA with ENA on card 0, EFA-only (no IP) on the others.
    assert interfaces[0]["interfaceType"] == "efa" and {i["interfaceType"] for i in interfaces[1:]} == {"efa-only"}
    assert (
        lt["capacityReservationSpecification"]["capacityReservationTarget"]["capacityReservationId"]
        == "cr-0123456789abcdef0"
    )
    assert "instanceMarketOptions" not in lt  # an on-demand reservation, not a capacity block
    # The reservation decides placement: EC2 cannot move it into a placement group the stack would create.
    assert not [r for r in run.of_type(PLACEMENT_GROUP) if r.parent == group.parent]
    assert "placement" not in lt
    assert group.inputs["capacityType"] == "ON_DEMAND"
    assert int(lt["blockDeviceMappings"][0]["ebs"]["volumeSize"]) == 1000


@pytest.mark.parametrize("preview", MODES)
def test_prod_capacity_block_group(preview):
    run = run_stack("prod", preview)
    group = node_group_registrations(run)["h200-block"]
    assert group.inputs["capacityType"] == "CAPACITY_BLOCK"
    assert group.inputs["subnetIds"] == ["subnet-0123456789abcdef5"]
    assert group.inputs["instanceTypes"] == ["p5e.48xlarge"]
    assert not [r for r in run.of_type(PLACEMENT_GROUP) if r.parent == group.parent]  # EFA off


@pytest.mark.parametrize("preview", MODES)
def test_adopted_cluster_subnets_come_from_the_platform_stack(preview):
    """A group that names no subnets launches in the subnets the platform stack exports."""
    config = stack_config("prod")
    for group in config["gpu-inference:nodeGroups"]:
        group.pop("subnetIds", None)
        group["efa"] = False
    run = run_config(config, preview=preview)
    assert node_group_registrations(run)["h200-block"].inputs["subnetIds"] == [
        "subnet-0123456789abcdef3",
        "subnet-0123456789abcdef4",
    ]


@pytest.mark.parametrize("preview", MODES)
def test_prod_adopts_the_platform_cluster_and_streams_70b_from_s3(preview):
    run = run_stack("prod", preview)
    assert not run.of_type("eks:index:Cluster")
    (reference,) = run.of_type("pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == "acme/platform/prod"
    assert run.outputs["clusterName"] == "platform-prod"
    assert node_group_registrations(run)["h100-reserved"].inputs["subnetIds"] == ["subnet-0123456789abcdef3"]
    uri = stack_config("prod")["gpu-inference:models"][1]["source"]["uri"]
    workload = deployments(run)["llama-3-1-70b"]
    c = container(workload)
    assert c["command"] == ["vllm", "serve", uri]
    assert c["args"][c["args"].index("--load-format") + 1] == "runai_streamer"
    streamer = json.loads(c["args"][c["args"].index("--model-loader-extra-config") + 1])
    assert streamer["concurrency"] >= 8 and 0 < streamer["memory_limit"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["AWS_REGION"] == stack_config("prod")["aws:region"]
    assert env["VLLM_ASSETS_CACHE"].startswith("/cache/") and "HF_TOKEN" not in env
    pod = workload.plain_inputs["spec"]["template"]["spec"]
    (association,) = [
        r for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if "autoscaler" not in r.name
    ]
    assert association.plain_inputs["serviceAccount"] == pod["serviceAccountName"]
    assert association.plain_inputs["namespace"] == workload.plain_inputs["metadata"]["namespace"]
    assert association.urn in workload.dependencies
    accounts = [r.plain_inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:ServiceAccount")]
    assert pod["serviceAccountName"] in accounts
    assert not [r for r in run.of_type("kubernetes:core/v1:Secret") if "llama-3-1-70b" in r.name]
    # Autoscaled: the floor it is created at (Pulumi.prod.yaml autoscaling.minReplicas).
    assert run.outputs["models"]["llama-3-1-70b"]["replicas"] == 2


def test_downloaded_models_get_the_token_from_a_kubernetes_secret():
    run = run_stack("dev", False)
    c = container(deployments(run)["llama-3-1-8b"])
    assert c["command"] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    (token,) = [e for e in c["env"] if e["name"] == "HF_TOKEN"]
    ref = token["valueFrom"]["secretKeyRef"]
    secret = next(r for r in run.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == ref["name"])
    assert ref["key"] in secret.plain_inputs["stringData"]
    assert "HF_HUB_OFFLINE" not in {e["name"] for e in c["env"]}


def test_runs_are_repeatable_in_one_process():
    from tests.harness import run_config, stack_config

    first = run_config(stack_config("dev"))
    second = run_config(stack_config("dev"))
    assert len(first.registrations) == len(second.registrations)
    assert {r.urn: r.inputs for r in first.registrations} == {r.urn: r.inputs for r in second.registrations}
    assert first.outputs == second.outputs
