"""Finding rendered `vllm serve` lines, their config.json, the CPU substitutions (no vLLM needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vllm_check import engine, serve
from vllm_check.rendered import (
    ROOT,
    ServeCommand,
    find_serve_commands,
    flag_value,
    model_config_for,
    replace_flag,
    serve_commands_in,
    stacks,
)

ARGS = [
    "--tensor-parallel-size",
    "2",
    "--max-model-len",
    "32768",
    "--gpu-memory-utilization",
    "0.9",
    "--dtype",
    "auto",
    "--kv-cache-dtype",
    "fp8",
    "--served-model-name",
    "m",
    "--host",
    "0.0.0.0",
    "--port",
    "8000",
]


def pod(containers, volumes=None):
    return {
        "containers": containers,
        "volumes": volumes or [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2048Mi"}}],
    }


def deployment(name="m", containers=None):
    containers = containers or [
        {
            "name": "vllm",
            "image": "vllm/vllm-openai:v0.32.0",
            "command": ["vllm", "serve", "Qwen/Qwen2.5-72B-Instruct"],
            "args": ARGS,
            "env": [
                {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
                {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "token"}}},
            ],
            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
        }
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"spec": pod(containers)}},
    }


LEADER_SCRIPT = """set -euo pipefail
ray start --head --port=6379 --disable-usage-stats
until python3 -c 'import ray'; do sleep 5; done
model="$1"; shift
exec vllm serve "$model" "$@\""""


def lws(script=LEADER_SCRIPT):
    leader = {
        "name": "vllm-leader",
        "image": "vllm/vllm-openai:v0.32.0",
        "command": ["/bin/bash", "-c", script, "vllm-leader", "meta-llama/Llama-3.1-405B-Instruct"],
        "args": ["--tensor-parallel-size", "8", "--pipeline-parallel-size", "2", "--served-model-name", "big model"],
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
    }
    worker = {
        "name": "vllm-worker",
        "image": "vllm/vllm-openai:v0.32.0",
        "command": ["/bin/bash", "-c", 'ray start --address="${LWS_LEADER_ADDRESS}:6379" --block'],
    }
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "big"},
        "spec": {
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": {"spec": pod([leader])},
                "workerTemplate": {"spec": pod([worker])},
            }
        },
    }


def test_deployment_exec_form():
    [found], skipped = serve_commands_in(deployment(), "prod", "deployment-m.yaml")
    assert not skipped
    assert found.model_ref == "Qwen/Qwen2.5-72B-Instruct" and found.args == ARGS
    assert found.argv == ["serve", "Qwen/Qwen2.5-72B-Instruct", *ARGS]
    assert found.shm_size_limit == "2048Mi" and found.tensor_parallel_size == 2
    assert found.env == {"VLLM_NO_USAGE_STATS": "1"} and found.source == "command"
    assert found.served_model_name == "m"


def test_leaderworkerset_script_is_evaluated_like_the_shell():
    found, skipped = serve_commands_in(lws(), "multinode", "lws.yaml")
    assert [f.role for f in found] == ["leader"]
    leader = found[0]
    assert leader.source == "script" and leader.model_ref == "meta-llama/Llama-3.1-405B-Instruct"
    # "$@" keeps the argument with a space as one argument, as bash would.
    assert leader.args == [
        "--tensor-parallel-size",
        "8",
        "--pipeline-parallel-size",
        "2",
        "--served-model-name",
        "big model",
    ]
    assert [s.where.split("container ")[1] for s in skipped] == ["vllm-worker)"]
    assert "runs no `vllm serve`" in skipped[0].reason


def test_script_evaluation_runs_no_commands(tmp_path):
    marker = tmp_path / "ran"
    script = f'model=$(touch {marker}); x=`touch {marker}`\nvllm serve "$model" --port 8000'
    found, skipped = serve_commands_in(lws(script), "s", "f.yaml")
    assert not marker.exists()
    assert not found and "unbound variable" in skipped[0].reason  # reported, not guessed


def test_nim_and_other_containers_are_skipped():
    nim = {"name": "nim", "image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"}
    found, skipped = serve_commands_in(deployment(containers=[nim]), "s", "f.yaml")
    assert not found and "nvcr.io/nim" in skipped[0].reason


def test_flags():
    assert flag_value(ARGS, "--port") == "8000"
    assert flag_value(["--port=1", "--port", "2"], "--port") == "2"
    assert flag_value(["-tp", "4"], "--tensor-parallel-size", "-tp") == "4"
    assert replace_flag(ARGS, "--port", "9") == [a for a in ARGS if a not in ("--port", "8000")] + ["--port", "9"]
    assert replace_flag(["--enforce-eager", "--x", "1"], "--x", None) == ["--enforce-eager"]
    assert replace_flag(["-tp", "2", "--y"], "--tensor-parallel-size", "3", ("-tp",)) == [
        "--y",
        "--tensor-parallel-size",
        "3",
    ]


def write_plan(build: Path, stack: str, models: list[dict]):
    (build / stack).mkdir(parents=True, exist_ok=True)
    (build / stack / "plan.json").write_text(json.dumps({"models": models}))


def test_config_from_the_catalog_via_plan_json(tmp_path):
    write_plan(tmp_path, "prod", [{"name": "m", "model": "qwen2.5-72b"}])
    command = serve_commands_in(deployment(), "prod", "f.yaml")[0][0]
    config, source = model_config_for(command, tmp_path)
    assert source == "catalog Qwen2.5-72B.json"
    assert config["num_attention_heads"] == 64 and not any(k.startswith("_") for k in config)


def test_config_by_repo_id_when_the_plan_does_not_say(tmp_path):
    command = serve_commands_in(deployment(name="unknown"), "prod", "f.yaml")[0][0]
    command.model_ref = "/models/meta-llama/Llama-3.1-70B-Instruct"
    config, source = model_config_for(command, tmp_path)
    assert source.startswith("catalog Llama-3.1-70B.json") and config["num_hidden_layers"] == 80


def test_config_of_a_non_catalog_model_from_the_stack_file(tmp_path):
    architecture = {"_note": "x", "architectures": ["LlamaForCausalLM"], "hidden_size": 1024, "num_attention_heads": 8}
    (tmp_path / "Pulumi.s.yaml").write_text(
        yaml.safe_dump(
            {"config": {"gpu-inference:models": [{"name": "m", "model": "acme/x", "architecture": architecture}]}}
        )
    )
    write_plan(tmp_path / "build", "s", [{"name": "m", "model": "acme/x"}])
    command = serve_commands_in(deployment(), "s", "f.yaml")[0][0]
    config, source = model_config_for(command, tmp_path / "build", root=tmp_path)
    assert config == {k: v for k, v in architecture.items() if k != "_note"} and "architecture" in source


def test_unmappable_model_is_an_error(tmp_path):
    command = serve_commands_in(deployment(name="zz"), "prod", "f.yaml")[0][0]
    command.model_ref = "acme/unknown-model"
    with pytest.raises(LookupError, match="cannot map model 'acme/unknown-model'"):
        model_config_for(command, tmp_path)


def test_self_test_cases_break_one_thing_each():
    base = engine.Case(
        "base", ["serve", "x", *ARGS], {"num_attention_heads": 64, "max_position_embeddings": 131072}, {}
    )
    cases = {c.id: c for c in engine.self_test_cases(base)}
    assert cases["self-test: unknown flag"].argv == base.argv + ["--no-such-flag"]
    assert flag_value(cases["self-test: bad value --kv-cache-dtype fp4"].argv, "--kv-cache-dtype") == "fp4"
    assert flag_value(cases["self-test: 64 heads, TP=3"].argv, "--tensor-parallel-size") == "3"
    assert flag_value(cases["self-test: --max-model-len 262144 > 131072"].argv, "--max-model-len") == "262144"
    for case in cases.values():
        assert case.expect_error


def command(args=ARGS, model="Qwen/Qwen2.5-72B-Instruct"):
    return ServeCommand("prod", "f.yaml", "Deployment", "m", "pod", "vllm", model, list(args), {}, "2048Mi", "command")


def test_cpu_substitutions_keep_every_rendered_flag(tmp_path):
    argv, env, made = serve.cpu_substitutions(command(), tmp_path, 12345, avx512=True)
    assert argv[:2] == ["serve", str(tmp_path)]
    args = argv[2:]
    for flag in (
        "--tensor-parallel-size",
        "--max-model-len",
        "--gpu-memory-utilization",
        "--dtype",
        "--kv-cache-dtype",
        "--served-model-name",
    ):
        assert flag_value(args, flag) == flag_value(ARGS, flag), flag
    assert flag_value(args, "--host") == "127.0.0.1" and flag_value(args, "--port") == "12345"
    assert {"--enforce-eager", "--skip-tokenizer-init"} <= set(args) and flag_value(args, "--load-format") == "dummy"
    assert env["VLLM_CPU_OMP_THREADS_BIND"].count("|") == 1 and env["VLLM_CPU_KVCACHE_SPACE"]
    assert len(made) == 6  # model, host, port, enforce-eager, two env vars: nothing else changed


def test_cpu_substitutions_only_where_needed(tmp_path):
    args = ARGS + ["--quantization", "fp8", "--revision", "abc", "--distributed-executor-backend", "ray"]
    argv, _, made = serve.cpu_substitutions(command(args), tmp_path, 1, avx512=False)
    assert flag_value(argv, "--kv-cache-dtype") == "auto" and flag_value(argv, "--quantization") is None
    assert flag_value(argv, "--revision") is None and flag_value(argv, "--distributed-executor-backend") == "mp"
    assert sum("->" in m or "dropped" in m for m in made) == 7


def test_quantities():
    assert serve.parse_quantity("2048Mi") == 2 * 2**30 and serve.parse_quantity("64Mi") == 64 * 2**20
    assert serve.parse_quantity("1G") == 10**9 and serve.parse_quantity("8Gi") == 8 * 2**30
    assert serve.parse_quantity("1.5Gi") == 3 * 2**29  # the API server's grammar, as the pod gets it
    with pytest.raises(ValueError):
        serve.parse_quantity("2 GiB")


def test_tp2_choice_prefers_the_line_that_exercises_most():
    auto = command([a if a != "fp8" else "auto" for a in ARGS])
    fp8 = command()
    tp4 = command([a if a != "2" else "4" for a in ARGS])
    assert serve.rendered_tp2([tp4, auto, fp8]) is fp8
    assert serve.rendered_tp2([tp4]) is None


def test_generated_tp2_goes_through_the_projects_code_path():
    from components.engines.vllm import server_args  # noqa: F401 - the path it uses

    generated = serve.generated_tp2("dev")
    assert generated.tensor_parallel_size == 2
    assert flag_value(generated.args, "--max-model-len") and generated.shm_size_limit.endswith("Mi")


def test_rendered_stacks_have_a_serve_line_per_vllm_model(tmp_path):
    """Against what `make synth` renders now: every vLLM model of every stack has its line."""
    names = stacks()
    for stack in names:
        result = subprocess.run(
            [sys.executable, "-m", "stack.synth", "--stack", stack, "--build-dir", str(tmp_path)],
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    found, _ = find_serve_commands(tmp_path, names)
    for stack in names:
        plan = json.loads((tmp_path / stack / "plan.json").read_text())
        vllm_models = {m["name"] for m in plan["models"] if m.get("engine", "vllm") == "vllm"}
        assert vllm_models == {c.name for c in found if c.stack == stack and c.role in ("pod", "leader")}, stack
    for command_ in found:
        model_config_for(command_, tmp_path)  # every one maps to a config.json
        assert command_.shm_size_limit and not command_.unresolved


def test_end_group_leaves_no_process():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, time; subprocess.Popen(['sleep', '60']); "
            "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while len(serve.group_members(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(serve.group_members(proc.pid)) == 2
    assert serve.end_group(proc, term_seconds=1, kill_seconds=5) == []  # SIGTERM ignored: SIGKILL ends it
    assert serve.group_members(proc.pid) == [] and proc.returncode is not None
