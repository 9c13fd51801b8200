"""Pure parts of the server pod (/dev/shm, load time, resources, network policy) and the vLLM engine (arguments)."""

import json

import pytest

from components import VLLM_CALIBRATED_VERSION, VLLM_IMAGE
from components.engines.vllm import model_reference, server_args
from components.server_pod import (
    await_timeout_seconds,
    network_policy_spec,
    pod_resources,
    shm_size_mib,
    startup_failure_threshold,
)
from components.smoke_test import smoke_labels
from sizing.instances import INSTANCES
from sizing.models import CONFIG_DIR
from sizing.startup import estimate_startup
from stack.config import parse_config
from stack.placement import place
from tests.harness import arg_value, quantity_mib


def placement(**model):
    config = parse_config(
        {
            "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
            "nodeGroups": [{"name": "h100", "instanceType": "p5.48xlarge", "maxNodes": 2}],
            "models": [{"name": "m", "model": "llama-3.1-70b", "maxModelLen": 8192, **model}],
        }
    )
    return place(config).models[0]


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_shm_covers_vllm_rings_and_nccl_per_rank(gpus):
    size = shm_size_mib(gpus)
    assert size >= 160 + 240 * gpus + 256  # vLLM checks free space for its rings first
    assert size >= 1024 * gpus  # 1 GiB + 1 GiB per extra rank
    assert shm_size_mib(1) >= 256  # "64 MiB free" made vLLM refuse to start at TP=1


def test_load_time_grows_with_weights_and_a_downloaded_70b_gets_over_ten_minutes():
    small, large = estimate_startup(15, "huggingFace"), estimate_startup(131, "huggingFace")
    assert small.startup_probe_budget_s < large.startup_probe_budget_s
    assert large.startup_probe_budget_s > 600
    assert estimate_startup(131, "s3").startup_probe_budget_s < large.startup_probe_budget_s
    seconds = large.startup_probe_budget_s
    assert startup_failure_threshold(seconds) * 10 >= seconds
    assert await_timeout_seconds(seconds) > seconds + 600  # image pull on top, and bounded
    assert await_timeout_seconds(seconds) < 4 * 3600


@pytest.mark.parametrize("instance", sorted(INSTANCES))
def test_pods_filling_a_node_fit_its_cpu_and_memory(instance):
    it = INSTANCES[instance]
    for gpus in (1, 2, 4, 8):
        resources = pod_resources(it, gpus)
        pods = it.gpus_per_node // gpus
        cpu = int(resources["requests"]["cpu"].removesuffix("m")) * pods / 1000
        memory = quantity_mib(resources["requests"]["memory"]) * pods / 1024
        assert cpu <= it.vcpus - 4 and memory <= it.memory_gib * 0.95
        assert resources["requests"]["memory"] == resources["limits"]["memory"]
        assert quantity_mib(resources["limits"]["memory"]) > shm_size_mib(gpus) + 16 * 1024
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == str(gpus)


def test_args_set_every_flag_the_sizing_depends_on():
    model = placement(quantization="fp8", kvCacheDtype="fp8", enforceEager=True, gpuMemoryUtilization=0.92)
    args = server_args(model)
    plan = model.plan
    assert arg_value(args, "--tensor-parallel-size") == str(plan.tensor_parallel_size)
    assert "--pipeline-parallel-size" not in args
    assert arg_value(args, "--quantization") == "fp8"
    assert arg_value(args, "--kv-cache-dtype") == "fp8"
    assert arg_value(args, "--gpu-memory-utilization") == "0.92"
    assert arg_value(args, "--max-num-seqs") == str(plan.settings.max_num_seqs)
    assert arg_value(args, "--max-num-batched-tokens") == str(plan.settings.max_num_batched_tokens)
    assert "--enforce-eager" in args
    assert "--quantization" not in server_args(placement())


def _checkpoint(method: str) -> dict:
    """Llama-3.1-70B's config.json as its public AWQ/GPTQ 4-bit checkpoints carry it."""
    config = json.loads((CONFIG_DIR / "Llama-3.1-70B.json").read_text())
    config["quantization_config"] = {"quant_method": method, "bits": 4, "group_size": 128}
    if method == "awq":
        config["quantization_config"].update(zero_point=True, version="gemm")
    else:
        config["quantization_config"].update(desc_act=False, sym=True)
    return config


@pytest.mark.parametrize(("method", "kernel"), [("awq", "awq_marlin"), ("gptq", "gptq_marlin")])
def test_awq_and_gptq_run_on_marlin_kernels(method, kernel):
    """`--quantization awq` would force vLLM's old fp16-only kernel, which refuses bf16."""
    model = placement(model=f"acme/llama-70b-{method}", architecture=_checkpoint(method), quantization=method)
    assert arg_value(server_args(model), "--quantization") == kernel


def test_network_policy_admits_only_named_namespaces_and_the_smoke_test_on_the_server_port():
    spec = network_policy_spec("m", ["gateway", "apps"], {"app": "m"})
    clients, smoke = spec["ingress"]
    selector = clients["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps", "gateway"]}
    assert clients["ports"] == smoke["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert smoke["from"] == [{"podSelector": {"matchLabels": smoke_labels("m")}}]
    (only_smoke,) = network_policy_spec("m", [], {"app": "m"})["ingress"]  # no namespace named: only the smoke test
    assert "namespaceSelector" not in only_smoke["from"][0]


def test_image_is_a_pinned_release_and_the_calibration_is_recorded():
    assert VLLM_IMAGE == "vllm/vllm-openai:v0.32.0"
    assert VLLM_CALIBRATED_VERSION == "0.26.0"


def test_download_repo_defaults_to_the_catalog_and_can_be_overridden():
    assert model_reference(placement()) == "meta-llama/Llama-3.1-70B"
    instruct = placement(source={"type": "huggingFace", "repo": "meta-llama/Llama-3.1-70B-Instruct"})
    assert model_reference(instruct) == "meta-llama/Llama-3.1-70B-Instruct"
    volume = placement(source={"type": "volume", "claimName": "weights", "path": "llama/70b"})
    assert model_reference(volume) == "/models/llama/70b"
