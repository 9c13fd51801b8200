"""Pure parts of multi-node serving and NIM: scripts, EFA environment, NIM variables, placement."""

import base64
import json
import shlex

import pytest

from components.engines import engine_for
from components.engines.nim import docker_config_json, nim_env
from components.engines.vllm import leader_script, server_args, worker_script
from components.server_pod import GROUP_JOIN_SECONDS, efa_env, leader_worker_set_spec, startup_seconds
from sizing.instances import INSTANCES
from sizing.startup import estimate_startup
from stack.config import ConfigError, parse_config
from stack.placement import place
from tests.harness import arg_value

IMAGE = "acme/vllm-openai-efa:v0.32.0"


def config(models, groups=None):
    return parse_config(
        {
            "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1", "subnet-2"]}},
            "nodeGroups": groups
            or [{"name": "h100", "instanceType": "p5.48xlarge", "maxNodes": 6, "efa": True, "subnetIds": ["subnet-1"]}],
            "models": models,
        }
    )


def big(**extra):
    return {"name": "big", "model": "llama-3.1-405b", "maxModelLen": 32768, "image": IMAGE, **extra}


def test_multi_node_replicas_take_whole_nodes_and_single_node_pods_pack_beside():
    placement = place(
        config(
            [
                big(replicas=2),
                {"name": "small", "model": "llama-3.1-8b", "maxModelLen": 8192, "tensorParallelSize": 1, "replicas": 3},
            ]
        )
    )
    group = placement.node_groups[0]
    assert group.needed_nodes == 2 * 2 + 1  # 2 replicas x 2 nodes, and one node for three 1-GPU pods
    assert placement.needs_leader_worker_set and placement.efa_node_groups == ["h100"]


def test_an_unplaced_multi_node_model_prefers_the_efa_group_of_its_instance_type():
    groups = [
        {"name": "plain", "instanceType": "p5.48xlarge", "maxNodes": 2},
        {"name": "fast", "instanceType": "p5.48xlarge", "maxNodes": 2, "efa": True, "subnetIds": ["subnet-1"]},
    ]
    (model,) = place(config([big()], groups)).models
    assert model.node_group == "fast" and model.multi_node


def test_explicit_pp_fills_nodes_with_tp():
    (model,) = place(
        config(
            [{"name": "m", "model": "llama-3.1-70b", "maxModelLen": 8192, "pipelineParallelSize": 2, "image": IMAGE}]
        )
    ).models
    assert (model.plan.tensor_parallel_size, model.plan.pipeline_parallel_size, model.plan.pods) == (8, 2, 2)


def test_leader_waits_for_every_gpu_then_serves_the_plans_arguments():
    (model,) = place(config([big()])).models
    script = leader_script(model)
    assert script.index("ray start --head") < script.index("until python3") < script.index("exec vllm serve")
    assert ">= 2 and" in script and '.get("GPU", 0) >= 16' in script
    args = server_args(model)
    assert (
        arg_value(args, "--pipeline-parallel-size") == "2"
        and arg_value(args, "--distributed-executor-backend") == "ray"
    )
    assert "${LWS_LEADER_ADDRESS}:6379" in worker_script() and "--block" in worker_script()
    alone = estimate_startup(model.plan.weights_gib_total, "huggingFace", prepulled=True, local_nvme=True)
    assert startup_seconds(engine_for(model), model) >= alone.startup_probe_budget_s + GROUP_JOIN_SECONDS


def test_leader_script_runs_under_bash_with_the_args_as_positional_parameters(tmp_path):
    """The leader's command line, executed with stub ray/python3/vllm: vllm gets exactly the args."""
    import subprocess

    (model,) = place(config([big()])).models
    spec = leader_worker_set_spec(engine_for(model), model, INSTANCES["p5.48xlarge"], gfd=True, image=IMAGE, secrets={})
    leader = spec["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in (("ray", "exit 0"), ("python3", "exit 0"), ("vllm", 'printf "%s\\n" "$@" > "$OUT"')):
        path = bin_dir / tool
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    out = tmp_path / "argv"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "OUT": str(out)}
    subprocess.run([*leader["command"], *leader["args"]], env=env, check=True, timeout=30)
    assert out.read_text().splitlines() == ["serve", "meta-llama/Llama-3.1-405B", *leader["args"]]


def test_efa_environment():
    values = {e["name"]: e["value"] for e in efa_env()}
    assert values == {
        "FI_PROVIDER": "efa",
        "FI_EFA_USE_DEVICE_RDMA": "1",
        "NCCL_NET": "AWS Libfabric",
        "NCCL_SOCKET_IFNAME": "^lo,docker",
    }
    assert "NCCL_PROTO" not in values


def nim_placement(**nim):
    models = [
        {
            "name": "n",
            "model": "llama-3.1-70b",
            "maxModelLen": 8192,
            "engine": "nim",
            "nim": {"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4", **nim},
        }
    ]
    return place(config(models)).models[0]


def test_nim_variables_and_passthrough_arguments():
    model = nim_placement(profile="tensorrt_llm-h100-bf16-tp4-pp1-throughput")
    env = {e["name"]: e.get("value") for e in nim_env(model, "key-secret")}
    assert env["NIM_TENSOR_PARALLEL_SIZE"] == "4" and env["NIM_PIPELINE_PARALLEL_SIZE"] == "1"
    assert env["NIM_MODEL_PROFILE"] == "tensorrt_llm-h100-bf16-tp4-pp1-throughput"
    passthrough = shlex.split(env["NIM_PASSTHROUGH_ARGS"])
    assert arg_value(passthrough, "--gpu-memory-utilization") == "0.9" and "--max-model-len" not in passthrough
    assert "NIM_PASSTHROUGH_ARGS" not in {e["name"] for e in nim_env(nim_placement(passthroughArgs=False), "s")}


def test_nim_profile_and_tp_list_must_agree():
    with pytest.raises(ConfigError) as error:
        nim_placement(profile="vllm-bf16-tp8-pp1", profileTensorParallelSizes=[2, 4])
    assert "names tp8, which is not among nim.profileTensorParallelSizes [2, 4]" in str(error.value)


def test_pull_secret_is_a_docker_config_for_nvcr():
    config_json = json.loads(docker_config_json("nvapi-123"))
    auth = config_json["auths"]["nvcr.io"]
    assert auth["username"] == "$oauthtoken" and auth["password"] == "nvapi-123"
    assert base64.b64decode(auth["auth"]) == b"$oauthtoken:nvapi-123"
