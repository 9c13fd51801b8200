"""sizing/calibrate.py: vLLM's start-up logs and live-check reports give back what the engine measured.

The H100 set's records were written from the logs in calibration/logs/ (real vLLM 0.26.0 runs):
reading each log must give the record's numbers. The vLLM 0.32.0 message formats (read from its
source: ``Model loading took %s GiB memory``, ``GPU KV cache size: %s tokens, Maximum concurrency
for %s tokens per request: %.2fx`` on one line) are made from the same records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizing.calibrate import calibration_record, read_live_check, read_log
from sizing.errors import SizingError
from sizing.gpus import GPUS
from smoke.live_check import Expectation, compare, engine_cache
from tests.smoke.vllm_metrics import metrics_text

CALIBRATION = Path(__file__).parent / "calibration"
LOGGED = [
    r for r in json.loads((CALIBRATION / "vllm-0.26-h100.json").read_text()) if (CALIBRATION / r["log"]).is_file()
]
IDS = [r["case"] for r in LOGGED]
H100 = GPUS["H100-80GB"]
MEASURED = (
    "weights_gib_per_gpu",
    "kv_available_gib",
    "kv_tokens",
    "max_concurrency",
    "cudagraph_gib",
    "cudagraph_estimate_gib_subtracted_before_kv",
    "tp",
    "max_model_len",
    "dtype",
    "gpu_memory_utilization",
    "enforce_eager",
    "started",
)


def from_log(record, text: str) -> dict:
    return calibration_record(
        case=record["case"], model=record["model"], architecture=record["architecture"], gpu=H100, log=read_log(text)
    )


def test_the_logs_are_there():
    assert len(LOGGED) == 8


@pytest.mark.parametrize("record", LOGGED, ids=IDS)
def test_real_026_log_gives_back_the_record(record):
    made = from_log(record, (CALIBRATION / record["log"]).read_text())
    assert {key: made[key] for key in MEASURED} == {key: record[key] for key in MEASURED}
    assert made["engine"]["num_gpu_blocks"] == record["engine"]["num_gpu_blocks"]
    assert made["engine"]["kv_block_size"] == record["engine"]["kv_block_size"]
    assert made["engine"]["max_num_batched_tokens"] == record["engine"]["max_num_batched_tokens"]
    assert made["memory_profile"] == record["memory_profile"]


def log_032(record) -> str:
    """The memory lines of a vLLM 0.32.0 start-up at INFO, for this record's numbers."""
    args = {
        "model": "/models/x",
        "max_model_len": record["max_model_len"],
        "tensor_parallel_size": record["tp"],
        "gpu_memory_utilization": record["gpu_memory_utilization"],
        "dtype": record["dtype"],
        **({"enforce_eager": True} if record["enforce_eager"] else {}),
    }
    lines = [f"(APIServer pid=1) INFO 12-02 10:00:00 [utils.py:253] non-default args: {args!r}"]
    for rank in range(record["tp"]):
        worker = f"(Worker_TP{rank} pid={10 + rank}) INFO 12-02 10:00:05"
        lines.append(
            f"{worker} [gpu_model_runner.py:5150] Model loading took {record['weights_gib_per_gpu']} GiB memory "
            "and 3.141593 seconds"
        )
        lines.append(f"{worker} [gpu_worker.py:760] Available KV cache memory: {record['kv_available_gib']} GiB")
    lines.append(
        f"(EngineCore pid=2) INFO 12-02 10:00:06 [kv_cache_utils.py:2330] GPU KV cache size: "
        f"{record['kv_tokens']:,} tokens, Maximum concurrency for {record['max_model_len']:,} tokens per request: "
        f"{record['max_concurrency']:.2f}x"
    )
    if record["cudagraph_gib"]:
        lines.append(
            f"(Worker_TP0 pid=10) INFO 12-02 10:00:09 [model_runner.py:747] Graph capturing finished in 5 secs, "
            f"took {record['cudagraph_gib']} GiB"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("record", LOGGED, ids=IDS)
def test_032_log_format_gives_back_the_record(record):
    made = from_log(record, log_032(record))
    for key in MEASURED:
        if key != "cudagraph_estimate_gib_subtracted_before_kv":
            assert made[key] == record[key], key
    assert made["engine"]["num_gpu_blocks"] == record["engine"]["num_gpu_blocks"]


def test_smallest_worker_kv_cache_is_kept():
    """vLLM gives every TP worker the smallest worker's KV cache."""
    record = next(r for r in LOGGED if r["tp"] == 2)
    text = log_032(record).replace(
        f"Available KV cache memory: {record['kv_available_gib']} GiB",
        f"Available KV cache memory: {record['kv_available_gib'] + 1} GiB",
        1,
    )
    assert read_log(text)["kv_available_gib"] == record["kv_available_gib"]


def live_check_report(record) -> dict:
    """What the smoke Job writes to its ConfigMap for this engine."""
    expected = Expectation(
        model=record["model"], kv_cache_tokens=0, min_concurrency=1, max_model_len=record["max_model_len"]
    )
    return json.loads(json.dumps(compare(expected, engine_cache(metrics_text(record))).to_dict()))


@pytest.mark.parametrize("record", LOGGED, ids=IDS)
def test_live_check_report_gives_back_blocks_tokens_and_concurrency(record):
    made = calibration_record(
        case="c", model=record["model"], architecture=record["architecture"], gpu=H100,
        live=read_live_check(live_check_report(record)),
    )  # fmt: skip
    assert made["engine"]["num_gpu_blocks"] == record["engine"]["num_gpu_blocks"]
    assert made["kv_tokens"] == record["kv_tokens"]
    assert made["max_concurrency"] == pytest.approx(record["max_concurrency"], abs=0.005)
    assert (made["max_model_len"], made["gpu_memory_utilization"], made["started"]) == (
        record["max_model_len"],
        record["gpu_memory_utilization"],
        True,
    )
    assert made["weights_gib_per_gpu"] is None and made["kv_available_gib"] is None  # metrics do not say


def test_log_and_live_check_together_keep_the_log_figures_and_the_engine_blocks():
    record = LOGGED[0]
    made = calibration_record(
        case="c", model=record["model"], architecture=record["architecture"], gpu=H100,
        log=read_log((CALIBRATION / record["log"]).read_text()), live=read_live_check(live_check_report(record)),
    )  # fmt: skip
    assert made["weights_gib_per_gpu"] == record["weights_gib_per_gpu"]
    assert made["engine"]["num_gpu_blocks"] == record["engine"]["num_gpu_blocks"]


def test_a_failed_start_is_a_record_that_did_not_start():
    record = LOGGED[0]
    text = log_032(record).split("\n(EngineCore")[0].replace("Available KV cache memory", "x")
    text += (
        "\nValueError: To serve at least one request with the models's max seq len (4096), 2.5 GiB KV cache is needed"
    )
    made = from_log(record, text)
    assert made["started"] is False and made["kv_tokens"] is None
    assert made["error"].startswith("ValueError: To serve at least one request")


def test_refuses_what_it_cannot_tell():
    record = LOGGED[0]
    with pytest.raises(SizingError, match="nothing to calibrate from"):
        calibration_record(case="c", model="m", architecture={}, gpu=H100)
    with pytest.raises(SizingError, match="do not say max_model_len or gpu_memory_utilization"):
        from_log(record, "INFO Model loading took 3.0 GiB memory and 1.0 seconds")
    with pytest.raises(SizingError, match="79.18 GiB \\(torch\\), H200-141GB has 139.8: give the GPU it ran on"):
        calibration_record(
            case="c", model="m", architecture={}, gpu=GPUS["H200-141GB"],
            log=read_log((CALIBRATION / record["log"]).read_text()),
        )  # fmt: skip
    with pytest.raises(SizingError, match="no measured num_gpu_blocks"):
        read_live_check({"holds": True})
