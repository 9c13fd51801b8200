"""The throughput model against what vLLM 0.26.0 delivered on an H200, and its physical properties.

Tolerance: every measured figure of every calibration run within 15% (TOLERANCE). The file
measured output and input tokens/s and each request's finish time; first-token times were not
recorded (LLM.generate returns final outputs only), so TTFT is checked where it equals the finish
time (the prefill run generates one token) and TPOT nowhere directly.
"""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sizing import GPUS, ServingSettings, SizingError, load_model
from sizing.throughput import CALIBRATED, RequestShape, predict_throughput, step_cost
from sizing.throughput_calibration import derive_efficiency, predict_run, read_calibration

ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_FILE = Path(__file__).parent / "calibration" / "vllm-0.26-h200-throughput.json"
TOLERANCE = 0.15

RAW = json.loads(CALIBRATION_FILE.read_text())
CALIBRATION = read_calibration(RAW)
RUNS = [r for r in RAW["models"][0]["runs"] if r["kind"] != "warmup"]
H200 = GPUS["H200-141GB"]
H100 = GPUS["H100-80GB"]
LLAMA_8B = load_model("llama-3.1-8b")


def _run_id(run):
    return f"{run['kind']}-c{run['concurrency']}-{run['input_len']}x{run['output_len']}"


def _predicted(run):
    matching = [r for r in CALIBRATION.runs if (r.kind, r.concurrency) == (run["kind"], run["concurrency"])]
    return predict_run(CALIBRATION, matching[0])


def _within(predicted, measured):
    return abs(predicted / measured - 1) <= TOLERANCE


@pytest.mark.parametrize("run", RUNS, ids=_run_id)
def test_every_calibration_run_is_reproduced_within_the_tolerance(run):
    p = _predicted(run)
    assert _within(p.output_tokens_per_s, run["output_tok_s"]), (p.output_tokens_per_s, run["output_tok_s"])
    assert _within(p.input_tokens_per_s, run["input_tok_s"]), (p.input_tokens_per_s, run["input_tok_s"])
    latency = run["per_request_finish_s_client"]["mean"]
    assert _within(p.request_latency_s, latency), (p.request_latency_s, latency)


def test_time_to_first_token_of_the_prefill_run_is_its_finish_time():
    (run,) = [r for r in RUNS if r["output_len"] == 1]
    p = _predicted(run)
    finish = run["per_request_finish_s_client"]
    assert _within(p.ttft_s, finish["mean"]), (p.ttft_s, finish["mean"])
    assert p.request_latency_s == pytest.approx(p.ttft_s)


def test_the_calibration_file_is_the_shared_one_and_is_what_the_runs_say():
    """The predictions use the memory plan's KV cache: it must match the engine's."""
    engine = RAW["models"][0]["engine"]
    p = _predicted(RUNS[0])
    measured = engine["num_gpu_blocks"] * engine["kv_block_size"]
    assert abs(p.kv_cache_tokens - measured) / measured < 0.01


def test_the_catalogs_efficiency_factors_are_derived_from_the_file():
    derived = derive_efficiency(CALIBRATION)
    assert derived.compute_fraction == pytest.approx(CALIBRATED.compute_fraction, rel=0.01)
    assert derived.per_layer_overhead_s == pytest.approx(CALIBRATED.per_layer_overhead_s, rel=0.02)
    assert derived.power_limited_clock_fraction == pytest.approx(CALIBRATED.power_limited_clock_fraction)
    assert derived.hbm_fraction == CALIBRATED.hbm_fraction


def test_efficiency_factors_are_physical():
    e = CALIBRATED
    assert 0.5 < e.hbm_fraction <= 1.0
    assert 0.3 < e.compute_fraction <= 1.0
    assert 0.0 < e.power_limited_clock_fraction <= 1.0
    assert 0.0 < e.per_layer_overhead_s < 100e-6


def test_a_single_sequence_decodes_at_most_at_the_bandwidth_bound():
    """Weights once per token over the datasheet bandwidth is the floor of the time per token."""
    s = ServingSettings(max_model_len=8192)
    p = predict_throughput(LLAMA_8B, H200, 1, s, RequestShape(128, 512), 1)
    weights_bytes = 2 * (LLAMA_8B.parameters - LLAMA_8B.vocab_size * LLAMA_8B.hidden_size)
    assert p.tpot_s > weights_bytes / (H200.hbm_bandwidth_gb_s * 1e9)
    assert p.tpot_s < 2 * weights_bytes / (H200.hbm_bandwidth_gb_s * 1e9)


def test_steady_load_obeys_littles_law_and_its_latency_adds_up():
    s = ServingSettings(max_model_len=8192)
    for concurrency in (1, 16, 300, 5000):
        p = predict_throughput(LLAMA_8B, H100, 1, s, RequestShape(1000, 200), concurrency)
        assert p.requests_per_s * p.request_latency_s == pytest.approx(concurrency, rel=1e-6)
        assert p.request_latency_s == pytest.approx(p.ttft_s + 199 * p.tpot_s, rel=1e-6)
        assert p.output_tokens_per_s == pytest.approx(p.requests_per_s * 200)


def test_concurrency_beyond_the_kv_cache_queues_instead_of_running():
    s = ServingSettings(max_model_len=32768, max_num_seqs=1024)
    p = predict_throughput(LLAMA_8B, H100, 1, s, RequestShape(16000, 16000), 64)
    assert p.limited_by == "kv_cache"
    assert p.running * 32000 <= p.kv_cache_tokens
    more = predict_throughput(LLAMA_8B, H100, 1, s, RequestShape(16000, 16000), 128)
    assert more.output_tokens_per_s == pytest.approx(p.output_tokens_per_s)
    assert more.ttft_s > p.ttft_s + 10


def test_max_num_seqs_caps_what_runs():
    s = ServingSettings(max_model_len=8192, max_num_seqs=16)
    p = predict_throughput(LLAMA_8B, H200, 1, s, RequestShape(128, 128), 64, arrival="burst")
    assert p.running == 16 and p.limited_by == "max_num_seqs"


def test_predictions_name_what_is_calibrated_and_what_is_extrapolated():
    s = ServingSettings(max_model_len=8192)
    home = predict_throughput(LLAMA_8B, H200, 1, s, RequestShape(128, 512), 32, arrival="burst")
    assert home.extrapolated == ()
    assert any("H200" in part for part in home.calibrated)
    away = predict_throughput(
        load_model("mixtral-8x7b"), H100, 4, replace(s, quantization="fp8"), RequestShape(128, 512), 32
    )
    text = " ".join(away.extrapolated)
    for word in ("H100-80GB", "MoE", "fp8", "TP=4"):
        assert word in text


def test_bad_load_is_refused_with_the_field_named():
    s = ServingSettings(max_model_len=4096)
    for shape, concurrency, word in (
        (RequestShape(0, 10), 1, "input"),
        (RequestShape(10, -1), 1, "output"),
        (RequestShape(10, 10), 0, "concurrency"),
        (RequestShape(4000, 200), 1, "max_model_len"),
    ):
        with pytest.raises(SizingError, match=word):
            predict_throughput(LLAMA_8B, H100, 1, s, shape, concurrency)
    with pytest.raises(SizingError, match="arrival"):
        predict_throughput(LLAMA_8B, H100, 1, s, RequestShape(10, 10), 1, arrival="poisson")


# Layouts that start with a 8192-token context, across model classes (dense, MoE, MLA, sliding).
LAYOUTS = [
    ("llama-3.1-8b", "H100-80GB", 1),
    ("llama-3.1-8b", "A100-40GB", 1),
    ("qwen2.5-7b", "A100-80GB", 2),
    ("mistral-7b-v0.1", "H200-141GB", 1),
    ("gemma-2-27b", "H100-80GB", 2),
    ("mixtral-8x7b", "H100-80GB", 4),
    ("deepseek-v2-lite", "H200-141GB", 1),
    ("llama-3.1-70b", "H100-80GB", 4),
]
layouts = st.sampled_from(LAYOUTS)
shapes = st.builds(RequestShape, st.integers(1, 4000), st.integers(1, 2000))
arrivals = st.sampled_from(["steady", "burst"])


def _predict(layout, shape, concurrency, arrival="steady", gpu=None, **changes):
    name, gpu_name, tp = layout
    s = ServingSettings(max_model_len=8192, **changes)
    return predict_throughput(load_model(name), gpu or GPUS[gpu_name], tp, s, shape, concurrency, arrival=arrival)


@settings(max_examples=40, deadline=None)
@given(layouts, shapes, st.integers(1, 512), arrivals, st.floats(1.05, 3.0))
def test_more_bandwidth_is_never_slower(layout, shape, concurrency, arrival, factor):
    base = _predict(layout, shape, concurrency, arrival)
    gpu = GPUS[layout[1]]
    faster = _predict(
        layout, shape, concurrency, arrival, gpu=replace(gpu, hbm_bandwidth_gb_s=gpu.hbm_bandwidth_gb_s * factor)
    )
    assert faster.output_tokens_per_s >= base.output_tokens_per_s * (1 - 1e-9)
    assert faster.request_latency_s <= base.request_latency_s * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(layouts, shapes, st.integers(1, 512), arrivals, st.floats(1.05, 3.0))
def test_more_tensor_core_throughput_is_never_slower(layout, shape, concurrency, arrival, factor):
    base = _predict(layout, shape, concurrency, arrival)
    gpu = GPUS[layout[1]]
    faster = _predict(
        layout, shape, concurrency, arrival, gpu=replace(gpu, dense_bf16_tflops=gpu.dense_bf16_tflops * factor)
    )
    assert faster.output_tokens_per_s >= base.output_tokens_per_s * (1 - 1e-9)
    assert faster.ttft_s <= base.ttft_s * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(layouts, shapes, st.integers(1, 256), st.integers(1, 256))
@example(("deepseek-v2-lite", "H200-141GB", 1), RequestShape(2000, 50), 1, 1)  # MoE: others' prefill averaged
@example(("mixtral-8x7b", "H100-80GB", 4), RequestShape(300, 50), 1, 1)
def test_more_concurrency_never_lowers_total_throughput_before_saturation(layout, shape, low, extra):
    a = _predict(layout, shape, low)
    b = _predict(layout, shape, low + extra)
    assert b.output_tokens_per_s >= a.output_tokens_per_s * (1 - 1e-9)
    assert b.tpot_s >= a.tpot_s * (1 - 1e-9)  # a larger batch never makes each token faster


@settings(max_examples=40, deadline=None)
@given(layouts, st.integers(16, 2000), st.integers(2, 1000), st.integers(1, 8))
def test_fp8_weights_decode_faster_than_bf16_at_small_concurrency(layout, input_tokens, output_tokens, concurrency):
    shape = RequestShape(input_tokens, output_tokens)
    bf16 = _predict(layout, shape, concurrency)
    fp8 = _predict(layout, shape, concurrency, quantization="fp8")
    assert fp8.tpot_s < bf16.tpot_s


@settings(max_examples=30, deadline=None)
@given(layouts, shapes, st.integers(1, 512), arrivals)
def test_fp8_kv_cache_is_never_slower(layout, shape, concurrency, arrival):
    base = _predict(layout, shape, concurrency, arrival)
    fp8 = _predict(layout, shape, concurrency, arrival, kv_cache_dtype="fp8")
    assert fp8.output_tokens_per_s >= base.output_tokens_per_s * (1 - 1e-9)


@settings(max_examples=30, deadline=None)
@given(layouts, st.integers(1, 3000), st.integers(1, 1000), st.integers(1, 2000), st.integers(1, 256), arrivals)
def test_a_longer_prompt_never_reaches_its_first_token_sooner(layout, input_tokens, more, output_tokens, c, arrival):
    short = _predict(layout, RequestShape(input_tokens, output_tokens), c, arrival)
    long = _predict(layout, RequestShape(input_tokens + more, output_tokens), c, arrival)
    assert long.ttft_s >= short.ttft_s * (1 - 1e-9)


@settings(max_examples=30, deadline=None)
@given(layouts, shapes, st.integers(1, 2048), arrivals)
def test_figures_are_finite_positive_and_consistent(layout, shape, concurrency, arrival):
    p = _predict(layout, shape, concurrency, arrival)
    for value in (p.output_tokens_per_s, p.input_tokens_per_s, p.ttft_s, p.request_latency_s):
        assert math.isfinite(value) and value > 0
    assert p.tpot_s >= 0 and p.ttft_s <= p.request_latency_s * (1 + 1e-9)
    assert p.input_tokens_per_s == pytest.approx(p.output_tokens_per_s * shape.input_tokens / shape.output_tokens)
    assert 1 <= p.running <= concurrency


def test_a_larger_tensor_parallel_size_shortens_each_token_of_a_large_model():
    s = ServingSettings(max_model_len=8192)
    model = load_model("llama-3.1-70b")
    tpots = [predict_throughput(model, H100, tp, s, RequestShape(512, 256), 1).tpot_s for tp in (2, 4, 8)]
    assert tpots[0] > tpots[1] > tpots[2]


def test_moe_reads_only_the_experts_its_tokens_route_to():
    cost = step_cost(load_model("mixtral-8x7b"), H100, 2, 1, ServingSettings(max_model_len=8192).resolved(H100))
    from sizing.throughput import Step

    one = cost.seconds(Step(decode_sequences=1, decode_context_tokens=100, sampled_tokens=1))
    many = cost.seconds(Step(decode_sequences=64, decode_context_tokens=6400, sampled_tokens=64))
    assert many > 1.5 * one  # 64 tokens touch every expert, one token a quarter of them


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sizing", "throughput", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


CLI_BASE = ("--model", "llama-3.1-8b", "--gpu", "H200-141GB", "--tp", "1", "--max-model-len", "8192")


def test_cli_json_carries_the_figures_and_their_provenance():
    result = run_cli(*CLI_BASE, "--input-len", "1024", "--output-len", "256", "--concurrency", "64", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("output_tokens_per_s", "input_tokens_per_s", "ttft_s", "tpot_s", "request_latency_s"):
        assert data[key] > 0
    assert data["calibrated"] and [part.split(":")[0] for part in data["extrapolated"]] == ["steady load"]
    assert data["input_tokens_per_s"] == pytest.approx(4 * data["output_tokens_per_s"], rel=1e-3)


def test_cli_table_names_the_layout_and_the_extrapolations():
    result = run_cli(
        "--model", "llama-3.1-70b", "--gpu", "h100-80gb", "--tp", "4", "--max-model-len", "8192",
        "--input-len", "512", "--output-len", "128", "--concurrency", "8", "--quantization", "fp8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "TP=4" in result.stdout and "extrapolated: quantization fp8" in result.stdout


@pytest.mark.parametrize(
    "args, word",
    [
        (("--input-len", "128", "--output-len", "128", "--concurrency", "0"), "concurrency"),
        (("--input-len", "-5", "--output-len", "128", "--concurrency", "4"), "input"),
        (("--input-len", "128", "--output-len", "128", "--concurrency", "nan"), "concurrency"),
        (("--input-len", "128", "--output-len", "128", "--concurrency", "4", "--gpu-memory-utilization", "nan"),
         "gpu_memory_utilization"),
        (("--input-len", "128", "--output-len", "128", "--concurrency", "4", "--max-num-seqs", "0"), "max_num_seqs"),
        (("--input-len", "9000", "--output-len", "128", "--concurrency", "4"), "max_model_len"),
    ],
)  # fmt: skip
def test_cli_refuses_bad_numbers_in_one_line_with_exit_2(args, word):
    result = run_cli(*CLI_BASE, *args)
    assert result.returncode == 2
    assert word in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, word",
    [(("--model", "llama-9"), "unknown model"), (("--gpu", "B200"), "unknown GPU"), (("--tp", "3"), "divisible")],
)
def test_cli_refuses_unknown_names_and_layouts_with_exit_2(args, word):
    base = dict(zip(CLI_BASE[::2], CLI_BASE[1::2], strict=True))
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [item for pair in base.items() for item in pair]
    result = run_cli(*flat, "--input-len", "128", "--output-len", "128", "--concurrency", "4", "--json")
    assert result.returncode == 2
    assert word in json.loads(result.stdout)["error"]


def test_a_slower_gpu_is_slower_by_at_most_its_bandwidth_ratio_for_one_sequence():
    s = ServingSettings(max_model_len=8192)
    fast = predict_throughput(LLAMA_8B, H200, 1, s, RequestShape(128, 512), 1)
    for name in ("H100-80GB", "A100-80GB", "A100-40GB"):
        gpu = GPUS[name]
        slow = predict_throughput(LLAMA_8B, gpu, 1, s, RequestShape(128, 512), 1)
        assert 1 < slow.tpot_s / fast.tpot_s <= H200.hbm_bandwidth_gb_s / gpu.hbm_bandwidth_gb_s


def test_the_planner_can_ask_each_layout_what_one_replica_serves_within_targets():
    from sizing import plan_model
    from sizing.throughput import max_concurrency_within, predict_for_plan

    model = load_model("llama-3.1-70b")
    plan = plan_model(model, ServingSettings(max_model_len=8192), gpus=["H100-80GB"], tensor_parallel_size=4)
    shape = RequestShape(1000, 200)
    direct = predict_throughput(model, H100, 4, plan.settings, shape, 16)
    assert predict_for_plan(plan, model, shape, 16) == direct
    best = max_concurrency_within(plan, model, shape, ttft_s=1.0, tpot_s=0.05)
    assert best is not None and best.ttft_s <= 1.0 and best.tpot_s <= 0.05
    beyond = predict_for_plan(plan, model, shape, best.concurrency + 1)
    assert beyond.ttft_s > 1.0 or beyond.tpot_s > 0.05
    assert max_concurrency_within(plan, model, shape, tpot_s=0.001) is None
