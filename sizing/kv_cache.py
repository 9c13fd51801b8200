"""KV cache sizes in vLLM's v1 KV cache manager.

Blocks hold 16 tokens, except for MLA models on Hopper: vLLM picks the FlashMLA backend there,
which only takes 64-token pages, and raises the block size to match.
"""

from __future__ import annotations

from sizing.architecture import ModelArchitecture
from sizing.gpus import Gpu
from sizing.parallel import kv_heads_per_rank
from sizing.settings import BLOCK_SIZE_TOKENS

FLASH_MLA_BLOCK_SIZE_TOKENS = 64


def block_size_tokens(model: ModelArchitecture, gpu: Gpu) -> int:
    if model.mla is not None and gpu.compute_capability >= (9, 0):
        return FLASH_MLA_BLOCK_SIZE_TOKENS
    return BLOCK_SIZE_TOKENS


def kv_cache_bytes_per_token_per_layer(model: ModelArchitecture, tensor_parallel_size: int, dtype_bytes: int) -> int:
    """Keys and values of one token in one layer on one rank.

    MLA caches one latent (``kv_lora_rank`` + the rotary part) per token, shared by all heads and
    therefore not split across TP ranks.
    """
    if model.mla is not None:
        return (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * dtype_bytes
    return 2 * kv_heads_per_rank(model, tensor_parallel_size) * model.head_dim * dtype_bytes


def kv_cache_tokens(available_bytes: int, bytes_per_token_all_layers: int, block_size: int = BLOCK_SIZE_TOKENS) -> int:
    """Whole blocks that fit; vLLM never hands out a partial block."""
    if available_bytes <= 0:
        return 0
    blocks = available_bytes // (block_size * bytes_per_token_all_layers)
    return blocks * block_size


def tokens_needed_per_request(
    sliding_window: int | None, max_model_len: int, max_num_batched_tokens: int, block_size: int = BLOCK_SIZE_TOKENS
) -> int:
    """Tokens one layer must hold for one request at ``max_model_len``
    (``FullAttentionSpec``/``SlidingWindowSpec.max_memory_usage_bytes``, in whole blocks)."""
    if sliding_window is None:
        return _ceil_div(max_model_len, block_size) * block_size
    tokens = min(sliding_window - 1 + max_num_batched_tokens, max_model_len)
    return (_ceil_div(tokens, block_size) + 1) * block_size


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
