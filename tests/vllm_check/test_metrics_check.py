"""vllm_check/metrics_check.py on the /metrics page a real vLLM 0.32.0 CPU server served (captured), so
``make verify-vllm``'s live check is known to parse and compare what vLLM really exports."""

from __future__ import annotations

from smoke.live_check import engine_cache
from tests.smoke.test_smoke_script import MODEL, Fake
from verify.monitoring import VLLM_METRICS_FIXTURE
from vllm_check.metrics_check import check, cpu_expectation
from vllm_check.rendered import ServeCommand
from vllm_check.serve import CPU_KVCACHE_GIB, TINY_LLAMA

# The capture: TP=1, VLLM_CPU_KVCACHE_SPACE=1, --max-model-len 32768 (its header says how it was made).
CAPTURE = VLLM_METRICS_FIXTURE.read_text()


def command(tp: int = 1) -> ServeCommand:
    return ServeCommand(
        stack="dev",
        file="-",
        kind="Deployment",
        name="m",
        role="pod",
        container="vllm",
        model_ref="meta-llama/Llama-3.1-8B-Instruct",
        args=["--served-model-name", MODEL, "--max-model-len", "32768", "--tensor-parallel-size", str(tp)],
        env={},
        shm_size_limit="1Gi",
        source="command",
    )


def test_the_capture_is_the_kv_space_the_cpu_was_given():
    cache = engine_cache(CAPTURE)
    expected = cpu_expectation(command(), TINY_LLAMA, float(CPU_KVCACHE_GIB), cache.cache_dtype)
    assert cache.kv_cache_tokens == expected.kv_cache_tokens == cache.kv_cache_size_tokens
    assert expected.kv_cache_bytes_per_token_per_gpu == 2 * 2 * 2 * 32 * 2  # K+V, 2 layers, 2 KV heads, 32, bf16


def test_check_passes_on_the_real_page_and_the_guarantee_beyond_fails():
    with Fake(metrics=CAPTURE) as fake:
        problems, lines = check(fake.base_url.removesuffix("/v1"), command(), TINY_LLAMA, float(CPU_KVCACHE_GIB))
    assert problems == [], "\n".join(lines)
    text = "\n".join(lines)
    assert "GUARANTEE HOLDS" in text and "16,384" in text
    assert "must pass): exit 0" in text and "must fail): exit 1" in text


def test_check_reports_a_kv_cache_other_than_the_cpu_was_given():
    """At TP=2 each rank holds half the heads: the same page is then half the predicted tokens."""
    with Fake(metrics=CAPTURE) as fake:
        problems, _ = check(fake.base_url.removesuffix("/v1"), command(tp=2), TINY_LLAMA, float(CPU_KVCACHE_GIB))
    assert any("holds 4,194,304 tokens at 256 bytes each" in p for p in problems)


def test_check_without_the_gauge_says_why():
    with Fake(metrics="vllm:num_requests_running 0.0\n") as fake:
        problems, _ = check(fake.base_url.removesuffix("/v1"), command(), TINY_LLAMA, float(CPU_KVCACHE_GIB))
    assert len(problems) == 1 and "no vllm:cache_config_info" in problems[0]
