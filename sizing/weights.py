"""Weight bytes one GPU holds, following vLLM's parallel layers.

Column- and row-parallel linears split across TP ranks; norms, the MoE router and MLA's
``kv_a_proj_with_mqa`` are replicated; KV projections are replicated per rank once TP exceeds
the KV heads; the embedding and LM head are vocab-parallel over a vocabulary padded to a
multiple of 64. Pipeline stage 0 holds the embedding, the last stage the final norm and LM head
(its own copy even when the embeddings are tied). Quantized formats keep embeddings, LM head,
norms and router in the activation dtype, and so do the modules a checkpoint's ``ignore`` names.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.architecture import MLA_ATTENTION, MOE_MLP, Layer, ModelArchitecture
from sizing.parallel import kv_heads_per_rank
from sizing.quantization import WeightFormat, online_format

VOCAB_PADDING = 64
GROUP_SIZE = 128
MIB = 1024**2


def allocated_bytes(nbytes: float) -> int:
    """What PyTorch's CUDA caching allocator counts for one tensor of ``nbytes``.

    Requests of 10 MiB and more get a segment rounded up to 2 MiB; when that leaves at most
    1 MiB the block is not split and the padding counts as allocated (Llama-2-13B's 135 MiB
    down_proj takes 136 MiB: +40 MiB over 40 layers, as vLLM reports).
    """
    size = -(-int(nbytes) // 512) * 512
    if size < 10 * MIB:
        return size
    segment = -(-size // (2 * MIB)) * (2 * MIB)
    return segment if segment - size <= MIB else size


@dataclass(frozen=True)
class LinearBytes:
    """Bytes of one linear layer's weight and its scales in a weight format."""

    per_element: float
    per_group_element: float = 0.0  # scales/zeros, per (input group x output) element
    group_size: int = GROUP_SIZE
    per_output: float = 0.0
    per_input: float = 0.0

    def of(self, in_features: int, out_features: int) -> float:
        weight = allocated_bytes(in_features * out_features * self.per_element)
        scales = in_features * out_features * self.per_group_element / self.group_size
        return weight + scales + out_features * self.per_output + in_features * self.per_input


def weight_format(quantization: str | WeightFormat | None) -> WeightFormat | None:
    if isinstance(quantization, str):
        return None if quantization == "none" else online_format(quantization)
    return quantization


def linear_bytes(quantization: str | WeightFormat | None, activation_bytes: int) -> LinearBytes:
    fmt = weight_format(quantization)
    if fmt is None:
        return LinearBytes(float(activation_bytes))
    return LinearBytes(
        fmt.bytes_per_element,
        fmt.bytes_per_group,
        fmt.group_size or GROUP_SIZE,
        fmt.scale_bytes_per_output,
        fmt.row_bytes_per_input,
    )


def padded_vocab(vocab_size: int) -> int:
    return -(-vocab_size // VOCAB_PADDING) * VOCAB_PADDING


def weights_bytes_per_gpu(
    model: ModelArchitecture,
    tensor_parallel_size: int,
    layers: range,
    first_stage: bool,
    last_stage: bool,
    quantization: str | WeightFormat | None,
    activation_bytes: int,
) -> int:
    tp = tensor_parallel_size
    h = model.hidden_size
    fmt = weight_format(quantization)
    quantized = linear_bytes(fmt, activation_bytes)
    plain = activation_bytes
    unquantized = LinearBytes(float(plain))
    total = 0.0
    vocab_shard = allocated_bytes(padded_vocab(model.vocab_size) // tp * h * plain)
    if first_stage:
        total += vocab_shard
    if last_stage and (not model.tie_word_embeddings or not first_stage):
        total += vocab_shard
    if last_stage:
        total += h * plain
    total += allocated_bytes(_rotary_cache_bytes(model, activation_bytes))
    for (kind, flags), count in _stage_counts(model, fmt, layers).items():
        qkv, o, gate_up, down = (quantized if flag else unquantized for flag in flags)
        per_layer = (
            _attention_bytes(model, kind, tp, qkv, o, plain)
            + model.norms_per_layer * h * plain
            + _mlp_bytes(model, kind.mlp == MOE_MLP, tp, gate_up, down, plain)
        )
        total += count * per_layer
    return int(total)


ALL_QUANTIZED = (True, True, True, True)


def _stage_counts(model: ModelArchitecture, fmt: WeightFormat | None, layers: range) -> dict[tuple, int]:
    """Layers of the range per (kind, which projections are quantized)."""
    if fmt is None or not fmt.ignore:
        return {(kind, ALL_QUANTIZED): count for kind, count in model.layer_counts(layers).items()}
    key = ("weight-counts", fmt, layers.start, layers.stop)
    counts = model.memo.get(key)
    if counts is None:
        counts = {}
        for index in layers:
            pair = (model.layers[index], _quantized_modules(fmt, index))
            counts[pair] = counts.get(pair, 0) + 1
        model.memo[key] = counts
    return counts


def _quantized_modules(fmt: WeightFormat, layer: int) -> tuple[bool, bool, bool, bool]:
    """Whether qkv, o, gate_up and down are quantized; vLLM fuses q/k/v and gate/up, so a fused
    module is quantized only when all its parts are."""
    return (
        all(fmt.module_quantized(layer, m) for m in ("q_proj", "k_proj", "v_proj")),
        fmt.module_quantized(layer, "o_proj"),
        all(fmt.module_quantized(layer, m) for m in ("gate_proj", "up_proj")),
        fmt.module_quantized(layer, "down_proj"),
    )


def _rotary_cache_bytes(model: ModelArchitecture, activation_bytes: int) -> int:
    rotary_dim = model.mla.qk_rope_head_dim if model.mla is not None else model.head_dim
    return model.max_position_embeddings * rotary_dim * activation_bytes


def _attention_bytes(
    model: ModelArchitecture, kind: Layer, tp: int, linear: LinearBytes, out: LinearBytes, plain: int
) -> float:
    """``linear`` for the projections into attention, ``out`` for o_proj."""
    h = model.hidden_size
    heads = model.num_attention_heads // tp
    if kind.attention == MLA_ATTENTION:
        m = model.mla
        assert m is not None
        qk_head = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            q = linear.of(h, m.q_lora_rank) + m.q_lora_rank * plain + linear.of(m.q_lora_rank, heads * qk_head)
        else:
            q = linear.of(h, heads * qk_head)
        kv_a = linear.of(h, m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * plain
        kv_b = linear.of(m.kv_lora_rank, heads * (m.qk_nope_head_dim + m.v_head_dim))
        o = out.of(heads * m.v_head_dim, h)
        return q + kv_a + kv_b + o
    q_dim = heads * model.head_dim
    kv_dim = kv_heads_per_rank(model, tp) * model.head_dim
    total = linear.of(h, q_dim + 2 * kv_dim) + out.of(q_dim, h)
    if model.qkv_bias:
        total += (q_dim + 2 * kv_dim) * plain
    return total


def _mlp_bytes(
    model: ModelArchitecture, moe_layer: bool, tp: int, linear: LinearBytes, down: LinearBytes, plain: int
) -> float:
    """``linear`` for gate/up, ``down`` for down_proj."""
    h = model.hidden_size
    if moe_layer:
        moe = model.moe
        assert moe is not None
        expert = moe.expert_intermediate_size // tp
        total = linear.of(h, moe.num_experts * 2 * expert) + down.of(moe.num_experts * expert, h)
        if moe.shared_expert_intermediate_size:
            shared = moe.shared_expert_intermediate_size // tp
            total += linear.of(h, 2 * shared) + down.of(shared, h)
            if moe.shared_expert_gate:
                total += h * plain
        return total + h * moe.num_experts * plain
    inter = model.intermediate_size // tp
    total = linear.of(h, 2 * inter) + down.of(inter, h)
    if model.mlp_bias:
        total += (2 * inter) * plain + h * plain
    return total
