"""``python -m sizing calibrate``: a record the calibration tests can check, added to a file; bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sizing.cli import main

CALIBRATION = Path(__file__).parent / "calibration"
RECORDS = {r["case"]: r for r in json.loads((CALIBRATION / "vllm-0.26-h100.json").read_text())}
C1 = RECORDS["c1_llama3.1-8b_tp1"]
C1_LOG = str(CALIBRATION / C1["log"])
# What tests/sizing/test_calibration.py reads from a record to check the accounting.
CHECKED = ("model", "tp", "max_model_len", "dtype", "gpu_memory_utilization", "enforce_eager", "started")
CHECKED_MEASURED = ("weights_gib_per_gpu", "kv_available_gib", "kv_tokens", "max_concurrency", "cudagraph_gib")


def calibrate(*args: str, capsys) -> tuple[int, str, str]:
    code = main(["calibrate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_record_from_a_log_is_what_the_calibration_tests_check(capsys):
    code, out, _ = calibrate("--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--log", C1_LOG, capsys=capsys)
    assert code == 0
    made = json.loads(out)
    assert {k: made[k] for k in CHECKED + CHECKED_MEASURED} == {k: C1[k] for k in CHECKED + CHECKED_MEASURED}
    assert made["case"] == "llama-3.1-8b_tp1" and made["gpu"] == "H100-80GB"
    assert made["gpu_name"] == C1["gpu_name"]
    assert made["engine"]["num_gpu_blocks"] == C1["engine"]["num_gpu_blocks"]
    for key in ("num_hidden_layers", "num_key_value_heads", "hidden_size", "vocab_size"):
        assert made["architecture"][key] == C1["architecture"][key]


def test_append_adds_and_replaces_by_case(tmp_path, capsys):
    target = tmp_path / "my-vllm.json"
    common = ["--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--append", str(target)]
    assert calibrate(*common, "--log", C1_LOG, "--case", "one", capsys=capsys)[0] == 0
    assert calibrate(*common, "--log", C1_LOG, "--case", "two", "--max-num-seqs", "256", capsys=capsys)[0] == 0
    assert calibrate(*common, "--log", C1_LOG, "--case", "one", "--max-num-seqs", "512", capsys=capsys)[0] == 0
    records = json.loads(target.read_text())
    assert [(r["case"], r["engine"]["max_num_seqs"]) for r in records] == [("two", 256), ("one", 512)]


def test_live_check_report_alone(tmp_path, capsys):
    report = tmp_path / "live-check.json"
    report.write_text(
        json.dumps(
            {
                "measured": {"num_gpu_blocks": 100, "block_size": 16, "gpu_memory_utilization": 0.9},
                "predicted": {"max_model_len": 800},
            }
        )
    )
    code, out, _ = calibrate(
        "--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--live-check", str(report), capsys=capsys
    )
    made = json.loads(out)
    assert code == 0 and made["kv_tokens"] == 1600 and made["max_concurrency"] == 2.0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "llama-3.1-8b", "--gpu", "H100-80GB"], "give --log"),
        (["--model", "llama-3.1-8b", "--gpu", "B300", "--log", C1_LOG], "unknown GPU 'B300'"),
        (["--model", "nope", "--gpu", "H100-80GB", "--log", C1_LOG], "unknown model 'nope'"),
        (["--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--log", "/nonexistent.log"], "cannot read the log"),
        (["--model", "llama-3.1-8b", "--gpu", "H200-141GB", "--log", C1_LOG], "give the GPU it ran on"),
        (["--model", "llama-3.1-8b", "--gpu", "H100-80GB", "--live-check", C1_LOG], "is not JSON"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, expected, capsys):
    code, out, err = calibrate(*args, capsys=capsys)
    assert code == 2 and not out
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_runs_as_python_m_sizing():
    result = subprocess.run(
        [sys.executable, "-m", "sizing", "calibrate", "--model", "llama-2-70b", "--gpu", "H100-80GB", "--log",
         str(CALIBRATION / RECORDS["a_llama2-70b_tp2"]["log"])],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kv_tokens"] == RECORDS["a_llama2-70b_tp2"]["kv_tokens"]
