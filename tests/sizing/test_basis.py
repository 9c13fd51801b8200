"""Measured versus extrapolated accounting paths, and the margin an extrapolated plan keeps."""

from dataclasses import replace

import pytest

from sizing.basis import EXTRAPOLATION_MARGIN_FLOOR_GIB, EXTRAPOLATION_MARGIN_FRACTION, MEASURED_KV_MARGIN_GIB
from sizing.gpus import GPUS
from sizing.memory import estimate_memory
from sizing.models import load_model
from sizing.planner import is_marginal, plan_model
from sizing.settings import ServingSettings

SETTINGS = ServingSettings(max_model_len=8192, max_num_batched_tokens=8192, max_num_seqs=256)


def _estimate(name, tp=1, pp=1, gpu="H100-80GB", settings=SETTINGS):
    return estimate_memory(load_model(name), GPUS[gpu], tp, pp, settings)


@pytest.mark.parametrize("name, tp", [("llama-3.1-8b", 1), ("llama-3.1-70b-fp8", 2), ("mixtral-8x7b", 2)])
def test_calibrated_classes_are_measured_and_keep_the_small_margin(name, tp):
    estimate = _estimate(name, tp)
    assert estimate.basis == "measured"
    assert estimate.kv_margin_gib_per_gpu == pytest.approx(MEASURED_KV_MARGIN_GIB)


@pytest.mark.parametrize(
    "name, tp, pp, part",
    [
        ("deepseek-v2-lite", 1, 1, "MLA attention"),
        ("deepseek-v2-lite", 1, 1, "MoE layers on one GPU on the V2 model runner"),
        ("mixtral-8x7b", 1, 1, "MoE layers on one GPU on the V1 model runner"),  # measured at TP=2 only
        ("gemma-2-27b", 2, 1, "sliding-window attention"),
        ("llama-3.1-405b", 8, 2, "pipeline parallelism"),
    ],
)
def test_uncalibrated_paths_are_extrapolated_and_named(name, tp, pp, part):
    estimate = _estimate(name, tp, pp)
    assert estimate.basis.startswith("extrapolated") and part in estimate.basis


def test_extrapolated_margin_is_the_documented_share_of_the_predicted_budget():
    e = _estimate("deepseek-v2-lite")
    non_kv = e.weights_gib_per_gpu + e.activation_gib_per_gpu + e.overhead_gib_per_gpu
    expected = max(EXTRAPOLATION_MARGIN_FLOOR_GIB, EXTRAPOLATION_MARGIN_FRACTION * non_kv)
    assert e.kv_margin_gib_per_gpu == pytest.approx(expected)
    assert e.promised_kv_cache_gib_per_gpu == pytest.approx(e.kv_cache_gib_per_gpu - expected)
    assert e.promised_kv_cache_tokens < e.kv_cache_tokens
    assert e.promised_max_concurrency < e.max_concurrency


def test_an_fp8_kv_cache_or_a_4bit_checkpoint_is_extrapolated():
    fp8_kv = _estimate("llama-3.1-8b", settings=replace(SETTINGS, kv_cache_dtype="fp8"))
    assert "fp8 KV cache" in fp8_kv.basis
    awq = _estimate("llama-3.1-8b", settings=replace(SETTINGS, quantization="awq"))
    assert "awq W4A16" in awq.basis


def test_marginal_counts_headroom_after_the_margin():
    """A layout with ample predicted headroom is marginal once the margin eats into it."""
    estimate = _estimate("llama-3.1-8b")
    needed = estimate.kv_cache_gib_needed_per_request
    assert not is_marginal(estimate)
    thin = replace(estimate, kv_margin_gib_per_gpu=estimate.kv_cache_gib_per_gpu - needed - 0.5)
    assert is_marginal(thin)


def test_plans_say_whether_they_are_measured_and_what_they_promise():
    plan = plan_model(load_model("deepseek-v2-lite"), SETTINGS, gpus=["H100-80GB"]).to_dict()
    assert plan["basis"].startswith("extrapolated") and plan["kv_margin_gib_per_gpu"] > 0
    assert plan["promised_kv_cache_tokens"] < plan["kv_cache_tokens"]
