"""vllm_check.engine's comparison of rendered flags with the engine config vLLM built: the
serving settings it compares come from stack.serving_settings."""

from __future__ import annotations

from vllm_check.engine import Case, Result, consistency_problems
from vllm_check.rendered import ServeCommand

ARGS = ["--tensor-parallel-size", "2", "--max-model-len", "8192", "--max-num-seqs", "64", "--kv-cache-dtype", "fp8"]
BUILT = {"tensor_parallel_size": 2, "max_model_len": 8192, "max_num_seqs": 64, "kv_cache_dtype": "fp8"}


def result(engine, args=ARGS):
    command = ServeCommand(
        stack="s",
        file="f",
        kind="Deployment",
        name="m",
        role="pod",
        container="vllm",
        model_ref="x",
        args=args,
        env={},
        shm_size_limit=None,
        source="command",
    )
    case = Case(id="0", argv=args, config={}, env={}, command=command)
    return Result(case, True, None, None, engine, 0.0)


def test_agreeing_engine_config_has_no_problem():
    assert consistency_problems(result(BUILT)) == []


def test_a_silently_replaced_setting_is_named():
    problems = consistency_problems(result({**BUILT, "max_num_seqs": 256, "kv_cache_dtype": "auto"}))
    assert any("--max-num-seqs 64 rendered" in p and "max_num_seqs=256" in p for p in problems)
    assert any("--kv-cache-dtype fp8 rendered" in p for p in problems)


def test_kv_cache_dtype_auto_is_left_to_the_engine():
    args = [*ARGS[:-1], "auto"]
    assert consistency_problems(result({**BUILT, "kv_cache_dtype": "bfloat16"}, args)) == []
