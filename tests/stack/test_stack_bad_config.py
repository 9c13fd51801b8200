"""Each kind of bad config is rejected with its field path and what would be valid, and nothing
is registered (the program validates and plans everything before declaring any resource)."""

import pulumi
import pytest

from tests.harness import run_bad_config, stack_config

MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


FALCON_LIKE = {
    "architectures": ["FalconForCausalLM"],
    "model_type": "falcon",
    "_sizing_architecture": "LlamaForCausalLM",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 65024,
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
}


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
        lambda c: model(c).update(source={"type": "gcs"}),
        ["models[0].source:", "'huggingFace', 'volume', 's3'"],
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
        ["models[0].name: 'Llama_8B' is not a DNS-1123 label"],
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
    "multi-node model on a group without efa": (
        lambda c: (
            model(c, 1).update(model="llama-3.1-405b", image="acme/vllm-efa:v0.32.0"),
            group(c).update(maxNodes=2),
        ),
        [
            "models[1] (llama-3-1-70b): the plan needs 2 p5.48xlarge nodes per replica (TP=8 x PP=2, 16 GPUs)",
            "node group 'h100' has efa: false",
            "set nodeGroups[0].efa: true",
        ],
    ),
    "multi-node model with the default image": (
        lambda c: (model(c, 1).update(model="llama-3.1-405b"), group(c).update(maxNodes=2, efa=True)),
        ["models[1].image: required for llama-3-1-70b, which spans nodes", "ships no EFA userspace"],
    ),
    "multi-node model on a group whose maxNodes is too small": (
        lambda c: (
            model(c, 1).update(model="llama-3.1-405b", image="acme/vllm-efa:v0.32.0"),
            group(c).update(efa=True),
        ),
        [
            "nodeGroups[0].maxNodes: 1 is too small",
            "llama-3-1-70b (1 x 2 whole nodes per replica, TP=8 x PP=2)",
            "raise maxNodes to at least 3",
        ],
    ),
    "pipeline parallel across nodes without efa": (
        lambda c: (
            model(c, 1).update(pipelineParallelSize=2, image="acme/vllm-efa:v0.32.0"),
            group(c).update(maxNodes=3),
        ),
        ["models[1] (llama-3-1-70b): the plan needs 2 p5.48xlarge nodes per replica", "efa: false"],
    ),
    "pipeline parallel with a partial node": (
        lambda c: (
            model(c, 1).update(pipelineParallelSize=2, tensorParallelSize=4),
            group(c).update(efa=True, maxNodes=3),
        ),
        [
            "models[1].tensorParallelSize: 4 with PP=2 would put 2 pods of 4 GPUs per replica",
            "give tensorParallelSize 8 or leave TP/PP to the planner",
        ],
    ),
    "pipeline parallel on a model without it": (
        lambda c: model(c).update(
            model="acme/falcon-like",
            pipelineParallelSize=2,
            maxModelLen=2048,
            architecture={**FALCON_LIKE},
        ),
        [
            "models[0].pipelineParallelSize: 2 needs pipeline parallelism, "
            "which vLLM does not implement for FalconForCausalLM"
        ],
    ),
    "nim with a source": (
        lambda c: model(c).update(engine="nim", nim={"image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"}),
        ["models[0]: source is not used with engine nim"],
    ),
    "nim with a tp its profile does not offer": (
        lambda c: model(c, 1).update(
            engine="nim",
            tensorParallelSize=4,
            nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4", "profile": "vllm-bf16-tp8-pp1"},
        ),
        [
            "models[1].tensorParallelSize: 4 is not offered by the NIM image's profile "
            "'vllm-bf16-tp8-pp1' (offered: tp8)"
        ],
    ),
    "nim with a tp list that does not fit": (
        lambda c: model(c, 1).update(
            engine="nim",
            minConcurrency=64,
            nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4", "profileTensorParallelSizes": [2]},
        ),
        [
            "models[1] (llama-3-1-70b): llama-3.1-70b does not fit on node group 'h100'",
            "TP=2",
            "with the TP its profile offers: [2]",
        ],
    ),
    "nim multi-node profile": (
        lambda c: model(c, 1).update(
            engine="nim",
            nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4", "profile": "tensorrt_llm-h100-bf16-tp8-pp2"},
        ),
        ["models[1].nim.profile: 'tensorrt_llm-h100-bf16-tp8-pp2' is a pp2 profile, which spans nodes"],
    ),
    "nim unpinned": (
        lambda c: model(c, 1).update(engine="nim", nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:latest"}),
        ["models[1].nim.image: 'nvcr.io/nim/meta/llama-3.1-70b-instruct:latest' is not pinned"],
    ),
    "nim without its block": (
        lambda c: model(c, 1).update(engine="nim"),
        ["models[1]: engine nim needs nim"],
    ),
    "efa group across zones": (
        lambda c: group(c).update(instanceType="p5.48xlarge", efa=True, subnetIds=["subnet-1", "subnet-2"]),
        ["nodeGroups[0]: efa: true launches into a cluster placement group, which lives in one Availability Zone"],
    ),
    "kai queue named like the parent queue": (
        lambda c: c["gpu-inference:cluster"].update(
            scheduling={"scheduler": "kai", "queue": "gpu-inference", "install": True}
        ),
        ["cluster.scheduling.queue: 'gpu-inference' is the parent queue install: true creates"],
    ),
    "kai without a queue": (
        lambda c: c["gpu-inference:cluster"].update(scheduling={"scheduler": "kai"}),
        ["cluster.scheduling: scheduler kai needs queue"],
    ),
    "kai install without kai": (
        lambda c: c["gpu-inference:cluster"].update(scheduling={"install": True}),
        ["cluster.scheduling: install: true installs KAI Scheduler: set scheduler: kai"],
    ),
    "max nodes too small": (
        lambda c: model(c, 1).update(replicas=3),
        ["nodeGroups[0].maxNodes: 1 is too small", "need 2 p5.48xlarge nodes", "raise maxNodes to at least 2"],
    ),
    "two cluster modes": (
        lambda c: c["gpu-inference:cluster"].update(
            existing={"source": "stackReference", "stack": "acme/platform/prod"}
        ),
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


@pytest.mark.parametrize("preview", MODES)
def test_efa_on_an_instance_without_it(monkeypatch, preview):
    """Every catalog instance has EFA; one without it (as a smaller size would be) is refused."""
    import dataclasses

    from sizing import instances

    monkeypatch.setitem(
        instances.INSTANCES, "p5.48xlarge", dataclasses.replace(instances.INSTANCES["p5.48xlarge"], efa_interfaces=0)
    )
    run = run_bad_config(with_change(lambda c: group(c).update(efa=True)), preview=preview)
    message = str(run.error)
    assert "nodeGroups[0]: efa: true needs an EFA-capable instance type; p5.48xlarge has no EFA interface" in message
    assert run.registrations == []


def test_nim_needs_the_ngc_api_key():
    config = with_change(
        lambda c: model(c, 1).update(engine="nim", nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4"})
    )
    run = run_bad_config(config, secrets={"hfToken": "hf_x"})
    assert "gpu-inference:ngcApiKey: required by engine nim (models[1])" in str(run.error)
    assert run.registrations == []
