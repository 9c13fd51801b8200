"""The live check of the plan (``smoke/live_check.py``, the smoke Job's) against the real vLLM CPU server.

The CPU's KV cache is ``VLLM_CPU_KVCACHE_SPACE`` GiB per rank, not the GPU plan; what is proven is the
path: vLLM's own ``/metrics`` is read, ``vllm:cache_config_info`` found and parsed, its blocks are the
tokens that KV space holds for the tiny model (bytes per token from ``sizing.kv_cache``), and the smoke
script run as the Job runs it (``python -I -S``, the live-check flags) passes for a guarantee the
engine holds and fails for one request more than it holds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sizing.architecture import ModelArchitecture
from sizing.kv_cache import kv_cache_bytes_per_token_per_layer
from smoke import live_check
from vllm_check.rendered import ServeCommand, flag_value

SMOKE_SCRIPT = Path(__file__).resolve().parents[1] / "smoke" / "smoke_test.py"


def cpu_bytes_per_token(config: dict, tensor_parallel_size: int, cache_dtype: str) -> int:
    model = ModelArchitecture.from_config(config, name="tiny-llama")
    dtype_bytes = 1 if cache_dtype.startswith("fp8") else 2
    return model.num_layers * kv_cache_bytes_per_token_per_layer(model, tensor_parallel_size, dtype_bytes)


def cpu_expectation(
    command: ServeCommand, config: dict, kv_space_gib: float, cache_dtype: str, min_concurrency: float = 1.0
) -> live_check.Expectation:
    """What the CPU server's KV space holds, as the plan would predict it."""
    per_token = cpu_bytes_per_token(config, command.tensor_parallel_size, cache_dtype)
    return live_check.Expectation(
        model=command.served_model_name,
        kv_cache_tokens=int(kv_space_gib * 2**30) // per_token,
        min_concurrency=min_concurrency,
        max_model_len=int(flag_value(command.args, "--max-model-len") or 4096),
        kv_cache_gib_per_gpu=kv_space_gib,
        kv_cache_bytes_per_token_per_gpu=per_token,
    )


def smoke_args(expected: live_check.Expectation) -> list[str]:
    """The live-check flags the smoke component renders from a plan."""
    return [
        "--min-concurrency",
        f"{expected.min_concurrency:g}",
        "--max-model-len",
        str(expected.max_model_len),
        "--expect-kv-tokens",
        str(expected.kv_cache_tokens),
        "--expect-kv-gib",
        f"{expected.kv_cache_gib_per_gpu:g}",
        "--kv-bytes-per-token",
        str(expected.kv_cache_bytes_per_token_per_gpu),
    ]


def check(server_url: str, command: ServeCommand, config: dict, kv_space_gib: float) -> tuple[list[str], list[str]]:
    """(problems, report lines) for the ready server at ``server_url`` (no trailing ``/v1``)."""
    problems: list[str] = []
    try:
        cache = live_check.engine_cache(live_check.read_metrics(server_url + "/metrics"))
    except live_check.LiveCheckError as error:
        return [f"live check: {error}"], []
    expected = cpu_expectation(command, config, kv_space_gib, cache.cache_dtype)
    comparison = live_check.compare(expected, cache)
    lines = comparison.lines()
    if cache.kv_cache_tokens != expected.kv_cache_tokens - expected.kv_cache_tokens % cache.block_size:
        problems.append(
            f"vllm:cache_config_info says {cache.num_gpu_blocks:,} blocks of {cache.block_size} "
            f"({cache.kv_cache_tokens:,} tokens); {kv_space_gib} GiB of KV space holds {expected.kv_cache_tokens:,} "
            f"tokens at {expected.kv_cache_bytes_per_token_per_gpu} bytes each"
        )
    if not comparison.holds:
        problems.append(f"live check at min_concurrency 1: {comparison.verdict()}")
    beyond = live_check.Expectation(
        **{**expected.__dict__, "min_concurrency": comparison.measured_concurrency + 1}
    )  # one request more than the engine holds
    for what, wanted, guarantee in (
        ("smoke test with the live check (must pass)", 0, expected),
        ("smoke test with a guarantee beyond the engine (must fail)", 1, beyond),
    ):
        result = subprocess.run(
            [sys.executable, "-I", "-S", str(SMOKE_SCRIPT), "--base-url", server_url + "/v1"]
            + ["--model", command.served_model_name, "--prompt-token-ids", "1,2,3", "--max-tokens", "2"]
            + ["--timeout", "90", *smoke_args(guarantee)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = (result.stdout + result.stderr).strip()
        lines.append(f"{what}: exit {result.returncode}: {output.splitlines()[-1] if output else ''}")
        if result.returncode != wanted:
            problems.append(f"{what}: exit {result.returncode}, wanted {wanted}: {output[-800:]}")
    return problems, lines
