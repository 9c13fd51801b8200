"""Each kind of bad config is rejected with its field path and what would be valid, and nothing
is registered (the program validates and plans everything before declaring any resource)."""

import copy

import pulumi
import pytest

from tests.harness import run_bad_config, stack_config

MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


def dev():
    return stack_config("dev")


def with_change(change):
    config = dev()
    change(config)
    return config


def model(config, index=0):
    return config["gpu-inference:models"][index]


def group(config, index=0):
    return config["gpu-inference:nodeGroups"][index]


CASES = {
    "unknown model key": (
        lambda c: model(c).update(maxModelLength=4096),
        ["models[0].maxModelLength: unknown key; valid keys here are name, model,", "maxModelLen"],
    ),
    "unknown volume source key": (
        lambda c: model(c).update(source={"type": "volume", "claimName": "w", "path": "m", "readonly": True}),
        ["models[0].source.readonly: unknown key; valid keys here are type, claimName, path"],
    ),
    "unknown source type": (
        lambda c: model(c).update(source={"type": "s3"}),
        ["models[0].source:", "'huggingFace', 'volume'"],
    ),
    "unknown node group key": (
        lambda c: group(c).update(maxNode=3),
        ["nodeGroups[0].maxNode: unknown key", "maxNodes"],
    ),
    "bad capacity type": (
        lambda c: group(c).update(capacityType="RESERVED"),
        ["nodeGroups[0].capacityType: 'RESERVED' is invalid", "'ON_DEMAND', 'SPOT' or 'CAPACITY_BLOCK'"],
    ),
    "unknown gpu": (
        lambda c: (group(c).pop("instanceType"), group(c).update(gpu="H100-SXM5-80GB")),
        ["nodeGroups[0].gpu: unknown GPU 'H100-SXM5-80GB'", "A100-40GB, A100-80GB, H100-80GB, H200-141GB"],
    ),
    "unknown instance type": (
        lambda c: group(c).update(instanceType="p5.4xlarge"),
        ["nodeGroups[0].instanceType: unknown instance type 'p5.4xlarge'", "p5.48xlarge"],
    ),
    "gpu and instance type both": (
        lambda c: group(c).update(gpu="H100-80GB"),
        ["nodeGroups[0]: give exactly one of gpu", "or instanceType"],
    ),
    "capacity block without reservation": (
        lambda c: group(c).update(capacityType="CAPACITY_BLOCK"),
        ["nodeGroups[0]: capacityType CAPACITY_BLOCK needs capacityReservationId"],
    ),
    "bad reservation id": (
        lambda c: group(c).update(capacityReservationId="reservation-1"),
        ["nodeGroups[0].capacityReservationId: 'reservation-1' is not a capacity reservation id"],
    ),
    "context beyond the model": (
        lambda c: model(c).update(maxModelLen=200000),
        ["models[0].maxModelLen: 200000 exceeds llama-3.1-8b's limit of 131072 tokens"],
    ),
    "bad dtype": (
        lambda c: model(c, 1).update(dtype="fp16"),
        ["models[1].dtype: 'fp16' is invalid", "'auto', 'bfloat16' or 'float16'"],
    ),
    "bad gpu memory utilization": (
        lambda c: model(c).update(gpuMemoryUtilization=1.5),
        ["models[0].gpuMemoryUtilization: 1.5 is invalid", "less than or equal to 0.98"],
    ),
    "unknown node group reference": (
        lambda c: model(c, 1).update(nodeGroup="a100"),
        ["models[1].nodeGroup: 'a100' is not a node group; configured node groups are h100"],
    ),
    "duplicate model names": (
        lambda c: model(c, 1).update(name="llama-3-1-8b"),
        ["models[1].name: 'llama-3-1-8b' is already used by models[0]"],
    ),
    "invalid model name": (
        lambda c: model(c).update(name="Llama_8B"),
        ["models[0].name: 'Llama_8B' is not a valid name"],
    ),
    "unknown catalog model": (
        lambda c: model(c).update(model="llama-9"),
        ["models[0].model: 'llama-9' is neither a catalog model", "llama-3.1-8b"],
    ),
    "repo id without architecture": (
        lambda c: model(c).update(model="acme/secret-model"),
        ["models[0].architecture: required for 'acme/secret-model'"],
    ),
    "unpinned image": (
        lambda c: model(c).update(image="vllm/vllm-openai:latest"),
        ["models[0].image: 'vllm/vllm-openai:latest' is not pinned"],
    ),
    "model fits nowhere": (
        lambda c: model(c, 1).update(model="llama-3.1-405b", tensorParallelSize=8, pipelineParallelSize=1),
        ["models[1] (llama-3-1-70b): llama-3.1-405b does not fit on node group 'h100' (p5.48xlarge)"],
    ),
    "multi-node model": (
        lambda c: model(c, 1).update(model="llama-3.1-405b"),
        ["models[1] (llama-3-1-70b): llama-3.1-405b does not fit on node group 'h100'", "a larger GPU: H200-141GB", "one pod on one node"],
    ),
    "pipeline parallel across nodes": (
        lambda c: model(c, 1).update(pipelineParallelSize=2),
        ["models[1].pipelineParallelSize: 2 would split each replica across 2 nodes"],
    ),
    "max nodes too small": (
        lambda c: model(c, 1).update(replicas=3),
        ["nodeGroups[0].maxNodes: 1 is too small", "need 2 p5.48xlarge nodes", "raise maxNodes to at least 2"],
    ),
    "two cluster modes": (
        lambda c: c["gpu-inference:cluster"].update(existing={"source": "stackReference", "stack": "acme/platform/prod"}),
        ["cluster: give exactly one of create (a new EKS cluster) or existing (adopt one)"],
    ),
    "create without network": (
        lambda c: c["gpu-inference:cluster"]["create"].pop("subnetIds"),
        ["cluster.create: give the network: vpcId and subnetIds"],
    ),
    "unknown top-level key": (
        lambda c: c.update({"gpu-inference:nodeGroup": []}),
        ["gpu-inference:nodeGroup: unknown key; valid keys are gpu-inference:cluster, gpu-inference:nodeGroups"],
    ),
    "missing node groups": (
        lambda c: c.pop("gpu-inference:nodeGroups"),
        ["nodeGroups: required"],
    ),
    "bad architecture": (
        lambda c: model(c).update(model="acme/tiny", architecture={"hidden_size": 64}),
        ["models[0].architecture:"],
    ),
}


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_with_path_and_nothing_registered(case, preview):
    change, expected = CASES[case]
    run = run_bad_config(with_change(change), preview=preview)
    assert isinstance(run.error, pulumi.RunError), run.error
    message = str(run.error)
    for fragment in expected:
        assert fragment in message, message
    assert run.registrations == []
    assert "Traceback" not in message


def test_every_problem_is_reported_at_once():
    def change(c):
        model(c).update(dtype="fp16")
        group(c).update(maxNode=2)

    message = str(run_bad_config(with_change(change)).error)
    assert "models[0].dtype" in message and "nodeGroups[0].maxNode" in message


def test_existing_cluster_from_kubeconfig_needs_the_secret():
    config = dev()
    config["gpu-inference:cluster"] = {
        "existing": {"source": "kubeconfig", "clusterName": "team-gpu", "subnetIds": ["subnet-1"]},
        "namespace": "inference",
    }
    run = run_bad_config(config, secrets={})
    assert "gpu-inference:kubeconfig: required with cluster.existing.source kubeconfig" in str(run.error)
    assert run.registrations == []


def test_existing_cluster_from_kubeconfig_needs_subnets():
    config = dev()
    config["gpu-inference:cluster"] = {"existing": {"source": "kubeconfig", "clusterName": "team-gpu"}}
    run = run_bad_config(config, secrets={"kubeconfig": "apiVersion: v1"})
    assert "cluster.existing.subnetIds: required with source: kubeconfig" in str(run.error)
