"""Every record of every calibration file in calibration/ (what a real vLLM engine reported),
reproduced by the sizing. A file made by ``python -m sizing calibrate`` is checked as it lands.

Tolerances are the product's promise: the start verdict exactly, weights per GPU within 2%,
KV cache within 0.3 GiB, bytes per token exactly.
"""

import json
from pathlib import Path

import pytest

from sizing.architecture import ModelArchitecture
from sizing.gpus import GPUS, resolve_gpu
from sizing.memory import estimate_memory
from sizing.settings import ServingSettings

FILES = sorted((Path(__file__).parent / "calibration").glob("*.json"))
RECORDS = [record for path in FILES for record in json.loads(path.read_text())]


def _gpu(record):
    """``gpu`` (a catalog name) in records made by calibrate; nvidia-smi's name in the measured sets."""
    if "gpu" in record:
        return resolve_gpu(record["gpu"])
    return next(gpu for gpu in GPUS.values() if gpu.product_label == record["gpu_name"].replace(" ", "-"))


def measured(*keys):
    """The records that hold these measurements (a record from a live check alone has no weights)."""
    records = [r for r in RECORDS if all(r.get(k) is not None for k in keys)]
    return pytest.mark.parametrize("record", records, ids=[r["case"] for r in records])


def _estimate(record):
    model = ModelArchitecture.from_config(record["architecture"], name=record["model"])
    engine = record["engine"]
    settings = ServingSettings(
        max_model_len=record["max_model_len"],
        gpu_memory_utilization=record["gpu_memory_utilization"],
        dtype=record["dtype"],
        max_num_batched_tokens=engine["max_num_batched_tokens"],
        max_num_seqs=engine["max_num_seqs"],
        enforce_eager=record["enforce_eager"],
        kv_cache_dtype=engine.get("kv_cache_dtype", "auto"),
    )
    return estimate_memory(model, _gpu(record), record["tp"], 1, settings)


@measured("started")
def test_start_verdict_matches_vllm(record):
    assert _estimate(record).starts is record["started"]


@measured("weights_gib_per_gpu")
def test_weights_per_gpu_within_two_percent(record):
    predicted = _estimate(record).weights_gib_per_gpu
    assert predicted == pytest.approx(record["weights_gib_per_gpu"], rel=0.02)


@measured("kv_available_gib")
def test_kv_cache_within_a_third_of_a_gib(record):
    predicted = _estimate(record).kv_cache_gib_per_gpu
    assert abs(predicted - record["kv_available_gib"]) <= 0.3


@measured("kv_available_gib", "kv_tokens")
def test_kv_bytes_per_token_exact(record):
    """vLLM's tokens are whole blocks of its KV bytes over bytes per token: recover that figure."""
    estimate = _estimate(record)
    blocks = record["engine"]["num_gpu_blocks"]
    assert blocks * 16 == record["kv_tokens"]
    per_token_from_log = record["kv_available_gib"] * 2**30 / record["kv_tokens"]
    assert estimate.kv_cache_bytes_per_token_per_gpu == pytest.approx(per_token_from_log, rel=0.005)
    assert estimate.kv_cache_tokens % 16 == 0


@measured("max_concurrency")
def test_max_concurrency_follows_tokens(record):
    estimate = _estimate(record)
    assert estimate.max_concurrency == pytest.approx(record["max_concurrency"], rel=0.03)


@measured("cudagraph_gib")
def test_cuda_graph_memory_within_a_quarter_gib(record):
    """V2 runs: the graph pool vLLM reports after capture; V1 (Mixtral): its estimate."""
    expected = record["cudagraph_estimate_gib_subtracted_before_kv"] or record["cudagraph_gib"]
    assert abs(_estimate(record).cudagraph_gib_per_gpu - expected) <= 0.25
