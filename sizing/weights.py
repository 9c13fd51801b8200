"""Weight bytes one GPU holds, following vLLM's parallel layers.

Column- and row-parallel linears split across TP ranks; norms, the MoE router and MLA's
``kv_a_proj_with_mqa`` are replicated; KV projections are replicated per rank once TP exceeds
the KV heads; the embedding and LM head are vocab-parallel over a vocabulary padded to a
multiple of 64. Pipeline stage 0 holds the embedding, the last stage the final norm and LM head
(its own copy even when the embeddings are tied). Quantized formats keep embeddings, LM head,
norms and router in the activation dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.architecture import MLA_ATTENTION, MOE_MLP, Layer, ModelArchitecture
from sizing.parallel import kv_heads_per_rank

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
    """Bytes per weight element for the linear layers of a quantization scheme."""

    per_element: float
    per_group_element: float = 0.0  # scales/zeros, per (input group x output) element

    def of(self, in_features: int, out_features: int) -> float:
        weight = allocated_bytes(in_features * out_features * self.per_element)
        return weight + in_features * out_features * self.per_group_element / GROUP_SIZE


def linear_bytes(quantization: str, activation_bytes: int) -> LinearBytes:
    if quantization == "fp8":
        return LinearBytes(1.0)
    if quantization in ("awq", "gptq"):
        # 4-bit weights packed in int32, fp16 scales and 4-bit packed zeros per group of 128.
        return LinearBytes(0.5, 2.0 + 0.5)
    return LinearBytes(float(activation_bytes))


def padded_vocab(vocab_size: int) -> int:
    return -(-vocab_size // VOCAB_PADDING) * VOCAB_PADDING


def weights_bytes_per_gpu(
    model: ModelArchitecture,
    tensor_parallel_size: int,
    layers: range,
    first_stage: bool,
    last_stage: bool,
    quantization: str,
    activation_bytes: int,
) -> int:
    tp = tensor_parallel_size
    h = model.hidden_size
    linear = linear_bytes(quantization, activation_bytes)
    plain = activation_bytes
    total = 0.0
    vocab_shard = allocated_bytes(padded_vocab(model.vocab_size) // tp * h * plain)
    if first_stage:
        total += vocab_shard
    if last_stage and (not model.tie_word_embeddings or not first_stage):
        total += vocab_shard
    if last_stage:
        total += h * plain
    total += allocated_bytes(_rotary_cache_bytes(model, activation_bytes))
    per_kind: dict[Layer, float] = {}
    for index in layers:
        kind = model.layers[index]
        if kind not in per_kind:
            per_kind[kind] = (
                _attention_bytes(model, kind, tp, linear, plain)
                + model.norms_per_layer * h * plain
                + _mlp_bytes(model, kind.mlp == MOE_MLP, tp, linear, plain)
            )
        total += per_kind[kind]
    return int(total)


def _rotary_cache_bytes(model: ModelArchitecture, activation_bytes: int) -> int:
    rotary_dim = model.mla.qk_rope_head_dim if model.mla is not None else model.head_dim
    return model.max_position_embeddings * rotary_dim * activation_bytes


def _attention_bytes(model: ModelArchitecture, kind: Layer, tp: int, linear: LinearBytes, plain: int) -> float:
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
        o = linear.of(heads * m.v_head_dim, h)
        return q + kv_a + kv_b + o
    q_dim = heads * model.head_dim
    kv_dim = kv_heads_per_rank(model, tp) * model.head_dim
    total = linear.of(h, q_dim + 2 * kv_dim) + linear.of(q_dim, h)
    if model.qkv_bias:
        total += (q_dim + 2 * kv_dim) * plain
    return total


def _mlp_bytes(model: ModelArchitecture, moe_layer: bool, tp: int, linear: LinearBytes, plain: int) -> float:
    h = model.hidden_size
    if moe_layer:
        moe = model.moe
        assert moe is not None
        expert = moe.expert_intermediate_size // tp
        total = linear.of(h, moe.num_experts * 2 * expert) + linear.of(moe.num_experts * expert, h)
        if moe.shared_expert_intermediate_size:
            shared = moe.shared_expert_intermediate_size // tp
            total += linear.of(h, 2 * shared) + linear.of(shared, h)
            if moe.shared_expert_gate:
                total += h * plain
        return total + h * moe.num_experts * plain
    inter = model.intermediate_size // tp
    total = linear.of(h, 2 * inter) + linear.of(inter, h)
    if model.mlp_bias:
        total += (2 * inter) * plain + h * plain
    return total
