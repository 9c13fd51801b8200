"""The CLI as a user runs it: a real subprocess, its exit code, stdout and stderr."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, "-m", "sizing", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_check_json_has_the_documented_keys():
    result = run(
        "check",
        "--model",
        "llama-3.1-8b",
        "--gpu",
        "h100-80gb",
        "--tp",
        "1",
        "--max-model-len",
        "8192",
        "--max-num-batched-tokens",
        "16384",
        "--max-num-seqs",
        "1024",
        "--dtype",
        "bfloat16",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in (
        "valid",
        "starts",
        "reason",
        "weights_gib_per_gpu",
        "activation_gib_per_gpu",
        "kv_cache_gib_per_gpu",
        "kv_cache_bytes_per_token_per_gpu",
        "kv_cache_tokens",
        "max_concurrency",
    ):
        assert key in data
    assert data["valid"] and data["starts"]
    assert data["kv_cache_bytes_per_token_per_gpu"] == 131072
    assert abs(data["kv_cache_gib_per_gpu"] - 54.26) <= 0.3


def test_check_reports_a_server_that_would_not_start_with_exit_zero():
    result = run(
        "check", "--model", "llama-3.1-70b", "--gpu", "H100-80GB", "--tp", "2", "--max-model-len", "131072", "--json"
    )
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["valid"] and not data["starts"] and "KV cache is needed" in data["reason"]


def test_plan_json_and_defaults_it_assumed():
    result = run(
        "plan", "--model", "llama-3.1-405b", "--gpu", "H100-80GB,H200-141GB", "--max-model-len", "32768", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["gpu"], data["tensor_parallel_size"], data["pipeline_parallel_size"], data["nodes"]) == (
        "H200-141GB",
        8,
        1,
        1,
    )
    assert data["instance_type"].startswith("p5e")
    assert "max_num_batched_tokens=8192" in data["assumed_defaults"]


def test_plan_that_fits_nowhere_exits_1_with_an_error_object():
    result = run(
        "plan",
        "--model",
        "llama-3.1-405b",
        "--gpu",
        "A100-40GB",
        "--tp",
        "8",
        "--pp",
        "1",
        "--max-model-len",
        "32768",
        "--json",
    )
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert "does not fit" in data["error"] and data["suggestions"]


def test_table_draws_a_memory_bar():
    result = run("check", "--model", "llama-3.1-70b", "--gpu", "H100-80GB", "--tp", "4", "--max-model-len", "32768")
    assert result.returncode == 0
    bar = next(line for line in result.stdout.splitlines() if "[" in line and "]" in line)
    assert "W" in bar and "K" in bar
    assert "assumed vllm serve defaults" in result.stdout


@pytest.mark.parametrize(
    "args, accepted",
    [
        (("--model", "gpt-5"), "llama-3.1-70b"),
        (("--gpu", "B200"), "H100-80GB"),
        (("--quantization", "int3"), "fp8"),
        (("--kv-cache-dtype", "fp4"), "fp8"),
    ],
)
def test_bad_input_is_one_line_naming_what_is_accepted(args, accepted):
    base = {"--model": "llama-3.1-8b", "--gpu": "H100-80GB", "--max-model-len": "4096"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = run("plan", *[x for pair in base.items() for x in pair])
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and accepted in lines[0] and "Traceback" not in result.stderr


def test_config_json_missing_a_field_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 64}))
    result = run("check", "--model", str(tmp_path), "--gpu", "H100-80GB", "--tp", "1", "--max-model-len", "128")
    assert result.returncode == 2
    assert "num_hidden_layers" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_importing_sizing_pulls_in_no_pulumi_torch_or_vllm():
    code = (
        "import sys, sizing, sizing.planner, sizing.cli; "
        "print(sorted(m for m in ('pulumi','torch','vllm','pydantic') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
