"""KV cache sizes in vLLM's v1 KV cache manager (block size 16)."""

from __future__ import annotations

from sizing.architecture import ModelArchitecture
from sizing.parallel import kv_heads_per_rank
from sizing.settings import BLOCK_SIZE_TOKENS


def kv_cache_bytes_per_token_per_layer(model: ModelArchitecture, tensor_parallel_size: int, dtype_bytes: int) -> int:
    """Keys and values of one token in one layer on one rank.

    MLA caches one latent (``kv_lora_rank`` + the rotary part) per token, shared by all heads and
    therefore not split across TP ranks.
    """
    if model.mla is not None:
        return (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * dtype_bytes
    return 2 * kv_heads_per_rank(model, tensor_parallel_size) * model.head_dim * dtype_bytes


def kv_cache_tokens(available_bytes: int, bytes_per_token_all_layers: int) -> int:
    """Whole blocks of 16 tokens that fit; vLLM never hands out a partial block."""
    if available_bytes <= 0:
        return 0
    blocks = available_bytes // (BLOCK_SIZE_TOKENS * bytes_per_token_all_layers)
    return blocks * BLOCK_SIZE_TOKENS


def tokens_needed_per_request(
    sliding_window: int | None, max_model_len: int, max_num_batched_tokens: int
) -> int:
    """Tokens one layer must hold for one request at ``max_model_len``
    (``FullAttentionSpec``/``SlidingWindowSpec.max_memory_usage_bytes``, in whole blocks)."""
    if sliding_window is None:
        return _ceil_div(max_model_len, BLOCK_SIZE_TOKENS) * BLOCK_SIZE_TOKENS
    tokens = min(sliding_window - 1 + max_num_batched_tokens, max_model_len)
    return (_ceil_div(tokens, BLOCK_SIZE_TOKENS) + 1) * BLOCK_SIZE_TOKENS


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
