"""smoke/live_check.py: the engine's measured KV cache back from /metrics, and the guarantee verdict.

Every record of every calibration file is turned into the ``/metrics`` text vLLM 0.26.0 and 0.32.0
would serve for it; reading it back must give the measured blocks, tokens, concurrency and GiB.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from smoke.live_check import (
    GIB,
    EngineCache,
    Expectation,
    LiveCheckError,
    compare,
    engine_cache,
    parse_samples,
)
from tests.smoke.vllm_metrics import CACHE_CONFIG_FIELDS, metrics_text
from verify.monitoring import VLLM_METRICS_FIXTURE

CALIBRATION = Path(__file__).resolve().parents[1] / "sizing" / "calibration"
RECORDS = [
    record
    for path in sorted(CALIBRATION.glob("*.json"))
    for record in json.loads(path.read_text())
    if isinstance(record, dict) and record.get("started")
]
CASES = [(record, release) for record in RECORDS for release in CACHE_CONFIG_FIELDS]
IDS = [f"{record['case']}-vllm{release}" for record, release in CASES]


def bytes_per_token_per_gpu(record) -> int:
    """K and V of every layer for this GPU's share of the KV heads, bf16 (all records are)."""
    a = record["architecture"]
    head_dim = a.get("head_dim") or a["hidden_size"] // a["num_attention_heads"]
    kv_heads = max(a["num_key_value_heads"] // record["tp"], 1)
    return 2 * a["num_hidden_layers"] * kv_heads * head_dim * 2


def measured_expectation(record, min_concurrency: float) -> Expectation:
    return Expectation(
        model=record["model"],
        kv_cache_tokens=record["kv_tokens"],
        min_concurrency=min_concurrency,
        max_model_len=record["max_model_len"],
        kv_cache_gib_per_gpu=record["kv_available_gib"],
        kv_cache_bytes_per_token_per_gpu=bytes_per_token_per_gpu(record),
        max_concurrency=record["max_concurrency"],
        block_size=16,
        kv_cache_dtype="auto",
        gpu_memory_utilization=record["gpu_memory_utilization"],
    )


def test_every_calibration_file_has_records():
    assert len(RECORDS) >= 8


@pytest.mark.parametrize("record, release", CASES, ids=IDS)
def test_metrics_give_back_the_measured_cache(record, release):
    cache = engine_cache(metrics_text(record, release))
    assert cache.num_gpu_blocks == record["engine"]["num_gpu_blocks"]
    assert cache.block_size == record["engine"]["kv_block_size"]
    assert cache.kv_cache_tokens == record["kv_tokens"]
    assert cache.cache_dtype == "auto"
    assert cache.gpu_memory_utilization == record["gpu_memory_utilization"]
    assert cache.kv_cache_size_tokens == record["kv_tokens"]


@pytest.mark.parametrize("record, release", CASES, ids=IDS)
def test_comparison_gives_back_measured_concurrency_and_gib(record, release):
    comparison = compare(measured_expectation(record, 1.0), engine_cache(metrics_text(record, release)))
    assert comparison.measured_concurrency == pytest.approx(record["max_concurrency"], abs=0.005)
    block_gib = 16 * bytes_per_token_per_gpu(record) / GIB
    # vLLM logs the bytes before flooring to whole blocks, rounded to 0.01 GiB
    assert record["kv_available_gib"] - block_gib - 0.005 <= comparison.measured_gib_per_gpu
    assert comparison.measured_gib_per_gpu <= record["kv_available_gib"] + 0.005
    assert comparison.predicted_blocks == comparison.measured.num_gpu_blocks
    assert comparison.notes == []


@pytest.mark.parametrize("record", RECORDS, ids=[r["case"] for r in RECORDS])
def test_guarantee_holds_up_to_the_measured_concurrency_and_not_beyond(record):
    cache = engine_cache(metrics_text(record))
    per_request = math.ceil(record["max_model_len"] / 16)
    exact = record["engine"]["num_gpu_blocks"] / per_request
    at_limit = compare(measured_expectation(record, exact), cache)
    assert at_limit.holds and at_limit.guaranteed_blocks == record["engine"]["num_gpu_blocks"]
    beyond = compare(measured_expectation(record, (record["engine"]["num_gpu_blocks"] + 1) / per_request), cache)
    assert not beyond.holds
    assert (
        "GUARANTEE BROKEN" in beyond.verdict()
        and f"{record['engine']['num_gpu_blocks']:,} KV blocks" in beyond.verdict()
    )


def test_partial_last_block_counts_as_a_whole_block():
    """max_model_len 100 at block 16 takes 7 blocks per request (vLLM's cdiv), not 6.25."""
    cache = EngineCache(num_gpu_blocks=13, block_size=16, cache_dtype="auto")
    expected = Expectation(model="m", kv_cache_tokens=208, min_concurrency=2, max_model_len=100)
    assert compare(expected, cache).guaranteed_blocks == 14
    assert not compare(expected, cache).holds


def test_mismatched_settings_are_noted():
    record = RECORDS[0]
    text = metrics_text(record, cache_dtype="fp8", gpu_memory_utilization=0.85, block_size=32)
    expected = measured_expectation(record, 1.0)
    notes = " ".join(compare(expected, engine_cache(text)).notes)
    assert "block size 32 tokens, the plan assumed 16" in notes
    assert "cache dtype 'fp8', the plan assumed 'auto'" in notes
    assert "gpu_memory_utilization 0.85, the plan assumed 0.9" in notes


def test_report_has_measured_predicted_and_difference():
    record = RECORDS[0]
    comparison = compare(measured_expectation(record, 1.0), engine_cache(metrics_text(record)))
    report = json.loads(json.dumps(comparison.to_dict()))
    assert report["holds"] is True
    for key in ("num_gpu_blocks", "kv_cache_tokens", "kv_cache_gib_per_gpu", "max_concurrency"):
        assert key in report["measured"] and key in report["predicted"] and key in report["difference"]
    text = "\n".join(comparison.lines())
    for label in ("KV GiB per GPU", "KV blocks", "KV tokens", "concurrency @"):
        assert label in text
    assert f"{record['kv_tokens']:,}" in text


def test_label_values_with_escapes_and_timestamps():
    text = (
        'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",'
        'kv_cache_dtype_skip_layers="[\\"a,b\\"]",num_gpu_blocks="7",note="x\\\\y\\nz"} 1.0 1700000000000\n'
    )
    (sample,) = parse_samples(text)
    assert sample.labels["kv_cache_dtype_skip_layers"] == '["a,b"]'
    assert sample.labels["note"] == "x\\y\nz"
    assert engine_cache(text).num_gpu_blocks == 7


def test_several_engines_take_engine_zero_and_say_so():
    record = RECORDS[0]
    one = metrics_text(record).splitlines()
    line = next(x for x in one if x.startswith("vllm:cache_config_info"))
    other = line.replace('engine="0"', 'engine="1"').replace(
        f'num_gpu_blocks="{record["engine"]["num_gpu_blocks"]}"', 'num_gpu_blocks="1"'
    )
    cache = engine_cache("\n".join([other, *one]))
    assert cache.engine == "0" and cache.engines == 2
    assert cache.num_gpu_blocks == record["engine"]["num_gpu_blocks"]
    assert any("2 engines" in note for note in compare(measured_expectation(record, 1.0), cache).notes)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('vllm:num_requests_running{engine="0"} 0.0\n', "no vllm:cache_config_info among 1 samples"),
        ("", "--disable-log-stats"),
        ('vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1.0\n', "has not allocated its KV cache"),
        ('vllm:cache_config_info{block_size="16",num_gpu_blocks="many"} 1.0\n', "num_gpu_blocks='many' is not a int"),
        ("<html>not metrics</html>\n", "line 1 is not a Prometheus sample"),
        ("vllm:cache_config_info{block_size=16} 1.0\n", "cannot read the labels"),
    ],
)
def test_unreadable_metrics_say_why(text, expected):
    with pytest.raises(LiveCheckError, match=None) as error:
        engine_cache(text)
    assert expected in str(error.value)


def test_expectation_refuses_nonsense():
    with pytest.raises(LiveCheckError, match="min_concurrency"):
        Expectation(model="m", kv_cache_tokens=16, min_concurrency=0, max_model_len=16)
    with pytest.raises(LiveCheckError, match="max_model_len"):
        Expectation(model="m", kv_cache_tokens=16, min_concurrency=1, max_model_len=0)


def test_expectation_from_a_plan_the_planner_wrote():
    """The keys read are those sizing's Plan writes into plan.json (``models[].plan``)."""
    from sizing.models import load_model
    from sizing.planner import plan_model
    from sizing.settings import ServingSettings

    plan = plan_model(
        load_model("llama-3.1-8b"), ServingSettings(max_model_len=32768), gpus=["H100-80GB"], min_concurrency=16
    )
    entry = {"name": "llama-3-1-8b", "model": "llama-3.1-8b", "servedModelName": "chat", "plan": plan.to_dict()}
    document = json.loads(json.dumps({"models": [entry]}))
    for name in ("llama-3-1-8b", "llama-3.1-8b", "chat"):
        expected = Expectation.from_plan(document, name)
        assert expected.kv_cache_tokens == plan.estimate.kv_cache_tokens
        assert expected.max_model_len == 32768 and expected.min_concurrency == 16
        assert expected.kv_cache_bytes_per_token_per_gpu == plan.estimate.kv_cache_bytes_per_token_per_gpu
    with pytest.raises(LiveCheckError, match="'other' is not in the plan; it holds: llama-3-1-8b"):
        Expectation.from_plan(document, "other")


def test_a_real_vllm_032_page_parses():
    """A whole /metrics page a real vLLM 0.32.0 served on this CPU (histograms, info gauges, 447 samples)."""
    page = VLLM_METRICS_FIXTURE.read_text()
    samples = parse_samples(page)
    assert len(samples) > 400 and any(s.labels.get("le") == "+Inf" for s in samples)
    cache = engine_cache(page)
    assert cache.kv_cache_tokens == cache.kv_cache_size_tokens  # vLLM's own count of the same blocks
    assert (cache.block_size, cache.cache_dtype, cache.gpu_memory_utilization) == (128, "auto", 0.9)
