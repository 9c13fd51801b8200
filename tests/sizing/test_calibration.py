"""Every record of every calibration file in calibration/ (what a real vLLM engine reported),
reproduced by the sizing. A file made by ``python -m sizing calibrate`` is checked as it lands,
each test on the records that hold its measurement.

The measured sets: bf16 on H100 80GB (vllm-0.26-h100.json) and FP8 checkpoints on H200
(vllm-0.26-h200-fp8.json). Each record is sized from its config.json alone: the checkpoint's
quantization is read from it, never passed in, and the GPU comes from the record's device name.

Tolerances are the product's promise: the start verdict and the model runner exactly, weights per
GPU within 2%, activation peak within 0.15 GiB, KV cache within 0.3 GiB, bytes per token exactly,
KV tokens and max concurrency within 0.5% of the log's, CUDA graphs within a quarter GiB, and the
KV cache a plan promises (after its margin) never above what vLLM had.
"""

import json
from pathlib import Path

import pytest

from sizing.architecture import ModelArchitecture
from sizing.basis import EXTRAPOLATION_MARGIN_FRACTION, GIB, MEASURED_KV_MARGIN_GIB
from sizing.gpus import GPUS, resolve_gpu
from sizing.memory import estimate_memory
from sizing.settings import ServingSettings

HERE = Path(__file__).parent / "calibration"
# Every list-of-records file (the throughput file is one object, read by test_throughput).
RECORDS = [
    r
    for f in sorted(HERE.glob("*.json"))
    if isinstance(records := json.loads(f.read_text()), list)
    for r in records
    if "started" in r
]
DEVICES = {gpu.product_label.replace("-", " ").lower(): gpu for gpu in GPUS.values()}


def _gpu(record):
    """``gpu`` (a catalog name) in records made by calibrate; nvidia-smi's name in the measured sets."""
    if "gpu" in record:
        return resolve_gpu(record["gpu"])
    name = record.get("gpu_name", "NVIDIA H100 80GB HBM3").replace("-", " ").lower()
    assert name in DEVICES, f"{record['case']}: no GPU in the sizing for {name!r}"
    return DEVICES[name]


def _value(record, dotted):
    for key in dotted.split("."):
        record = record.get(key) if isinstance(record, dict) else None
    return record


def measured(*keys):
    """The records that hold these measurements (a record from a live check alone has no weights)."""
    records = [r for r in RECORDS if all(_value(r, k) is not None for k in keys)]
    return pytest.mark.parametrize("record", records, ids=[r["case"] for r in records])


def _estimate(record):
    model = ModelArchitecture.from_config(record["architecture"], name=record["model"])
    engine = record["engine"]
    settings = ServingSettings(
        max_model_len=record["max_model_len"],
        gpu_memory_utilization=record["gpu_memory_utilization"],
        dtype=record["dtype"],
        kv_cache_dtype="fp8" if str(engine.get("kv_cache_dtype", "auto")).startswith("fp8") else "auto",
        max_num_batched_tokens=engine["max_num_batched_tokens"],
        max_num_seqs=engine["max_num_seqs"],
        enforce_eager=record["enforce_eager"],
    )
    return estimate_memory(model, _gpu(record), record["tp"], record.get("pp", 1), settings)


def test_both_sets_are_present():
    ids = {r["case"] for r in RECORDS}
    assert {"a_llama2-70b_tp2", "e_mixtral-8x7b_tp2", "x1_llama3.1-8b-fp8_tp1", "x3_qwen2.5-7b-fp8-dynamic_tp1"} <= ids


@measured("started")
def test_start_verdict_matches_vllm(record):
    assert _estimate(record).starts is record["started"]


@measured("engine.model_runner")
def test_model_runner_is_the_one_vllm_picked(record):
    assert record["engine"]["model_runner"].startswith(_estimate(record).model_runner + " ")


@measured("engine")
def test_checkpoint_quantization_is_read_without_being_asked(record):
    logged = record["engine"].get("quantization")
    estimate = _estimate(record)
    if logged:
        assert estimate.weight_format.startswith(logged + " ")
    else:
        assert estimate.weight_format == "unquantized"


@measured("weights_gib_per_gpu")
def test_weights_per_gpu_within_two_percent(record):
    predicted = _estimate(record).weights_gib_per_gpu
    assert predicted == pytest.approx(record["weights_gib_per_gpu"], rel=0.02)


@measured("memory_profile.torch_peak_activation_increase_gib")
def test_activation_peak_within_0_15_gib(record):
    measured = record["memory_profile"]["torch_peak_activation_increase_gib"]
    assert abs(_estimate(record).activation_gib_per_gpu - measured) <= 0.15


@measured("kv_available_gib")
def test_kv_cache_within_a_third_of_a_gib(record):
    predicted = _estimate(record).kv_cache_gib_per_gpu
    assert abs(predicted - record["kv_available_gib"]) <= 0.3


@measured("kv_available_gib", "kv_tokens")
def test_promised_kv_cache_is_never_above_what_vllm_had(record):
    """The unsafe direction: a plan that promises more KV than the engine gets fails on paid GPUs."""
    estimate = _estimate(record)
    assert estimate.promised_kv_cache_gib_per_gpu <= record["kv_available_gib"]
    assert estimate.promised_kv_cache_tokens <= record["kv_tokens"]


@measured("kv_available_gib", "memory_profile.requested_gib")
def test_margins_cover_the_errors_they_were_derived_from(record):
    """A measured path's margin covers its largest over-prediction; the extrapolation fraction
    covers it as a share of what the sizing predicts in the budget besides KV."""
    estimate = _estimate(record)
    over = estimate.kv_cache_gib_per_gpu - record["kv_available_gib"]
    non_kv = record["memory_profile"]["requested_gib"] - record["kv_available_gib"]
    if estimate.measured:
        assert over <= MEASURED_KV_MARGIN_GIB
    assert over / non_kv <= EXTRAPOLATION_MARGIN_FRACTION
    assert over <= estimate.kv_margin_gib_per_gpu and estimate.kv_margin_gib_per_gpu * GIB > 0


def _one_kind_of_kv_layer(record) -> bool:
    model = ModelArchitecture.from_config(record["architecture"], name=record["model"])
    return len({(layer.attention, layer.sliding_window) for layer in model.layers}) == 1


@measured("kv_available_gib", "kv_tokens", "engine.num_gpu_blocks")
def test_kv_bytes_per_token_exact(record):
    """vLLM's tokens are whole blocks of its KV bytes over bytes per token: recover that figure.
    (Models mixing layer kinds report concurrency x max_model_len instead: next test.)"""
    if not _one_kind_of_kv_layer(record):
        pytest.skip("mixed layer kinds: tokens are reported as max concurrency x max_model_len")
    estimate = _estimate(record)
    blocks = record["engine"]["num_gpu_blocks"]
    block = record["engine"].get("kv_block_size", 16)
    assert blocks * block == record["kv_tokens"]
    per_token_from_log = record["kv_available_gib"] * 2**30 / record["kv_tokens"]
    assert estimate.kv_cache_bytes_per_token_per_gpu == pytest.approx(per_token_from_log, rel=0.005)
    assert estimate.kv_cache_tokens % block == 0


@measured("kv_tokens", "max_concurrency")
def test_kv_tokens_and_concurrency_as_the_log_reports_them(record):
    estimate = _estimate(record)
    assert estimate.kv_cache_tokens == pytest.approx(record["kv_tokens"], rel=0.005)
    assert estimate.max_concurrency == pytest.approx(record["max_concurrency"], rel=0.005)
    length = record["max_model_len"]
    assert int(record["max_concurrency"] * length) == pytest.approx(record["kv_tokens"], abs=0.01 * length)
    assert abs(estimate.max_concurrency - estimate.kv_cache_tokens / length) <= 1 / length


@measured("max_concurrency")
def test_max_concurrency_follows_tokens(record):
    estimate = _estimate(record)
    assert estimate.max_concurrency == pytest.approx(record["max_concurrency"], rel=0.03)


@measured("cudagraph_gib")
def test_cuda_graph_memory_within_a_quarter_gib(record):
    """V2 runs: the graph pool vLLM reports after capture; V1 (Mixtral): its estimate."""
    expected = record["cudagraph_estimate_gib_subtracted_before_kv"] or record["cudagraph_gib"]
    assert abs(_estimate(record).cudagraph_gib_per_gpu - expected) <= 0.25
