"""Zero and non-finite layout and load numbers are refused by the sizing CLI in one line with exit 2."""

from __future__ import annotations

import pytest

from sizing.cli import main
from sizing.errors import SizingError
from sizing.models import load_model
from sizing.planner import plan_model
from sizing.settings import ServingSettings

PLAN = ["plan", "--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--max-model-len", "8192"]
CHECK = ["check", "--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--max-model-len", "8192"]
THROUGHPUT = [
    "throughput", "--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--max-model-len", "8192",
    "--tp", "1", "--input-len", "100", "--output-len", "100",
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (PLAN + ["--tp", "0"], "--tp"),
        (PLAN + ["--pp", "0"], "--pp"),
        (PLAN + ["--tp", "-2"], "--tp"),
        (PLAN + ["--min-concurrency", "nan"], "--min-concurrency"),
        (PLAN + ["--min-concurrency", "inf"], "--min-concurrency"),
        (PLAN + ["--min-concurrency", "0"], "--min-concurrency"),
        (PLAN + ["--min-concurrency", "many"], "--min-concurrency"),
        (CHECK + ["--tp", "0"], "--tp"),
        (CHECK + ["--tp", "1", "--pp", "0"], "--pp"),
        (THROUGHPUT + ["--concurrency", "0"], "--concurrency"),
    ],
)
def test_zero_and_non_finite_numbers_exit_2_in_one_line(argv, flag, capsys) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: argument {flag}: ")


def test_a_valid_tp_still_plans(capsys) -> None:
    assert main(PLAN + ["--tp", "2", "--min-concurrency", "1.5"]) == 0
    assert "TP=2" in capsys.readouterr().out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1.0])
def test_the_planner_refuses_them_too(value: float) -> None:
    with pytest.raises(SizingError, match="min_concurrency"):
        plan_model(
            load_model("llama-3.1-8b"), ServingSettings(max_model_len=8192), gpus=["H100-80GB"], min_concurrency=value
        )
