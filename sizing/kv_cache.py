"""KV cache sizes in vLLM's v1 KV cache manager, for any mix of layer kinds.

Each attention layer registers a KV cache spec (full attention, sliding window of its size,
MLA). vLLM groups the layers by spec (``kv_cache_utils._get_kv_cache_groups_uniform_page_size``):
with one kind there is one group of every layer; with several, each kind is split into groups
of ``group_size`` layers (the fewest layers of any kind, or the most when the counts are within
1.5x), and ``group_size`` pools of blocks are each shared by one layer of every group. So one
block costs ``page x group_size`` bytes, and a request at ``max_model_len`` takes, from the one
shared block pool, the sum over groups of its group's blocks (a sliding-window group only its
window plus one batch). vLLM reports max concurrency as blocks over blocks per request, and KV
tokens as max concurrency x max_model_len (``_report_kv_cache_config``); for one kind of layer
this is the familiar blocks x block size.

Blocks hold 16 tokens. MLA on Hopper runs the FLASH_ATTN_MLA backend (any multiple of 16) with
a bf16 KV cache; an fp8 KV cache there needs FlashMLA, whose pages are 64 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.architecture import LINEAR_ATTENTION, MLA_ATTENTION, SLIDING_WINDOW, Layer, ModelArchitecture
from sizing.gpus import Gpu
from sizing.parallel import kv_heads_per_rank
from sizing.runner import mla_attention_backend
from sizing.settings import BLOCK_SIZE_TOKENS

FLASH_MLA_BLOCK_SIZE_TOKENS = 64
GROUP_SIZE_SPREAD = 1.5


def block_size_tokens(model: ModelArchitecture, gpu: Gpu, kv_cache_dtype_bytes: int = 2) -> int:
    if mla_attention_backend(model, gpu, kv_cache_dtype_bytes) == "FLASHMLA":
        return FLASH_MLA_BLOCK_SIZE_TOKENS
    return BLOCK_SIZE_TOKENS


def kv_cache_bytes_per_token_of_layer(
    model: ModelArchitecture, layer: Layer, tensor_parallel_size: int, dtype_bytes: int
) -> int:
    """Keys and values of one token in one layer on one rank.

    MLA caches one latent (``kv_lora_rank`` + the rotary part) per token, shared by all heads and
    therefore not split across TP ranks. Linear-attention layers keep no per-token cache.
    """
    if layer.attention == LINEAR_ATTENTION:
        return 0
    if layer.attention == MLA_ATTENTION:
        assert model.mla is not None
        return (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * dtype_bytes
    return 2 * kv_heads_per_rank(model, tensor_parallel_size) * model.head_dim * dtype_bytes


def kv_cache_bytes_per_token_per_layer(model: ModelArchitecture, tensor_parallel_size: int, dtype_bytes: int) -> int:
    """The largest per-layer figure (vLLM unifies the page size across layers)."""
    kinds = model.kinds
    return max(kv_cache_bytes_per_token_of_layer(model, layer, tensor_parallel_size, dtype_bytes) for layer in kinds)


def tokens_needed_per_request(
    sliding_window: int | None, max_model_len: int, max_num_batched_tokens: int, block_size: int = BLOCK_SIZE_TOKENS
) -> int:
    """Tokens one layer must hold for one request at ``max_model_len``
    (``FullAttentionSpec``/``SlidingWindowSpec.max_memory_usage_bytes``, in whole blocks)."""
    if sliding_window is None:
        return _ceil_div(max_model_len, block_size) * block_size
    tokens = min(sliding_window - 1 + max_num_batched_tokens, max_model_len)
    return (_ceil_div(tokens, block_size) + 1) * block_size


@dataclass(frozen=True)
class KVCacheLayout:
    """One rank's KV cache groups: what a block costs and what a request takes."""

    block_size: int
    page_bytes_per_layer: int  # one block of one layer
    group_size: int  # layers sharing one block's pools
    groups: tuple[tuple[int | None, int], ...]  # (sliding window or None, layers) per group
    layers: int

    @property
    def bytes_per_block(self) -> int:
        return self.page_bytes_per_layer * self.group_size

    @property
    def bytes_per_token(self) -> int:
        """Bytes per cached token summed over the layers (what the start-up log's figure divides)."""
        return self.page_bytes_per_layer * self.layers // self.block_size

    def num_blocks(self, available_bytes: float) -> int:
        """``get_num_blocks``: whole blocks of every pool; vLLM never hands out a partial block."""
        if available_bytes <= 0 or self.bytes_per_block == 0:
            return 0
        return int(available_bytes // self.page_bytes_per_layer // self.group_size)

    def blocks_per_request(self, max_model_len: int, max_num_batched_tokens: int) -> int:
        return sum(
            tokens_needed_per_request(window, max_model_len, max_num_batched_tokens, self.block_size) // self.block_size
            for window, _ in self.groups
        )

    def bytes_needed_per_request(self, max_model_len: int, max_num_batched_tokens: int) -> int:
        """``max_memory_usage_bytes`` over every layer: what vLLM checks one request against."""
        return sum(
            layers
            * tokens_needed_per_request(window, max_model_len, max_num_batched_tokens, self.block_size)
            // self.block_size
            * self.page_bytes_per_layer
            for window, layers in self.groups
        )

    def max_concurrency(self, available_bytes: float, max_model_len: int, max_num_batched_tokens: int) -> float:
        """``get_max_concurrency_for_kv_cache_config``: blocks over one request's blocks."""
        per_request = self.blocks_per_request(max_model_len, max_num_batched_tokens)
        return self.num_blocks(available_bytes) / per_request if per_request else 0.0

    def tokens(self, available_bytes: float, max_model_len: int, max_num_batched_tokens: int) -> int:
        """KV tokens as the start-up log reports them."""
        if len(self.groups) == 1:
            return self.num_blocks(available_bytes) * self.block_size
        return int(self.max_concurrency(available_bytes, max_model_len, max_num_batched_tokens) * max_model_len)


def kv_cache_layout(
    model: ModelArchitecture, layers: range, tensor_parallel_size: int, dtype_bytes: int, block_size: int
) -> KVCacheLayout:
    key = ("kv-layout", layers.start, layers.stop, tensor_parallel_size, dtype_bytes, block_size)
    layout = model.memo.get(key)
    if layout is None:
        layout = model.memo[key] = _kv_cache_layout(model, layers, tensor_parallel_size, dtype_bytes, block_size)
    return layout


def _kv_cache_layout(
    model: ModelArchitecture, layers: range, tensor_parallel_size: int, dtype_bytes: int, block_size: int
) -> KVCacheLayout:
    counts: dict[int | None, int] = {}
    page = 0
    for layer, count in model.layer_counts(layers).items():
        per_token = kv_cache_bytes_per_token_of_layer(model, layer, tensor_parallel_size, dtype_bytes)
        if per_token == 0:
            continue
        page = max(page, per_token * block_size)
        window = layer.sliding_window if layer.attention == SLIDING_WINDOW else None
        counts[window] = counts.get(window, 0) + count
    if not counts:
        return KVCacheLayout(block_size, 0, 0, (), 0)
    fewest, most = min(counts.values()), max(counts.values())
    group_size = most if len(counts) == 1 or most < fewest * GROUP_SIZE_SPREAD else fewest
    groups: list[tuple[int | None, int]] = []
    for window, count in counts.items():
        number = _ceil_div(count, group_size)
        groups += [(window, len(range(i, count, number))) for i in range(number)]
    return KVCacheLayout(block_size, page, group_size, tuple(groups), sum(counts.values()))


def kv_cache_tokens(available_bytes: int, bytes_per_token_all_layers: int, block_size: int = BLOCK_SIZE_TOKENS) -> int:
    """Whole blocks that fit, for one group of uniform layers."""
    if available_bytes <= 0:
        return 0
    blocks = available_bytes // (block_size * bytes_per_token_all_layers)
    return blocks * block_size


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
