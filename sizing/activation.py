"""Memory vLLM's profile run and CUDA runtime take besides weights and KV cache.

The torch activation peak is what ``profile_run`` allocates on top of the weights: a forward pass
over ``max_num_batched_tokens`` tokens split into ``min(max_num_seqs, tokens)`` requests, then the
sampler over one row per request. Attention kernels are skipped (there is no KV cache yet), so
the forward peak sits in the MLP, where the gate/up projection output and the activation
output are alive together with a few hidden-sized tensors:

- dense, torch.compile (piecewise graphs split at attention): the piece's inputs (attention
  output, ``h/TP`` wide, and the incoming residual) and the new residual: ``2 + 1/TP`` copies;
- dense, eager: the layer input held by the model's loop, the residual and the o_proj output;
- MoE (vLLM's modular fused-MoE kernel): a persistent workspace of ``M·topk·max(N/2, K)`` plus
  ``M·topk·max(N, K)`` elements (N = 2·intermediate/TP, K = hidden) instead of the dense MLP
  tensors, and the MoE output and all-reduce output besides.

``ALLOCATOR_SLACK`` is what the calibration shows beyond those tensors (cuBLAS workspaces and
compiler temporaries go through the same allocator). The CUDA context and communication
buffers exist before the budget is measured and sit outside it.
"""

from __future__ import annotations

from sizing.accounting import Accounting
from sizing.architecture import MLA_ATTENTION, MOE_MLP, ModelArchitecture
from sizing.quantization import WeightFormat
from sizing.runner import uses_v2_model_runner
from sizing.settings import ServingSettings

GIB = 1024**3
MIB = 1024**2
MARLIN_MAX_SMS = 132  # H100/H200 SXM; A100 has 108, so this bounds the reduce buffer from above
ALLOCATOR_SLACK_COMPILED = 0.08 * GIB
ALLOCATOR_SLACK_EAGER = 0.03 * GIB

# Measured with vLLM 0.26.0 on H100 (calibration logs): worker-start CUDA context, and the
# non-torch growth across the profile run (lazy kernel modules, communicator buffers).
CUDA_CONTEXT = 0.51 * GIB
TENSOR_PARALLEL_COMMUNICATORS = 0.96 * GIB
EXPERT_PARALLEL_COMMUNICATOR = 0.47 * GIB
NON_TORCH_INCREASE_SINGLE_GPU = 0.22 * GIB
NON_TORCH_INCREASE_TENSOR_PARALLEL = 0.06 * GIB
NON_TORCH_INCREASE_MOE_KERNELS = 0.06 * GIB

# V1 runner's CUDA-graph estimate (``profile_cudagraph_memory``): the largest first capture
# plus, per mode, one per-graph increment for every further capture size. Mixtral on H100:
# PIECEWISE 100 MiB + 4 MiB/graph, FULL 128 MiB + 2 MiB/graph.
CUDAGRAPH_FIRST_CAPTURE = 128 * MIB
CUDAGRAPH_PIECEWISE_PER_GRAPH = 4 * MIB
CUDAGRAPH_FULL_PER_GRAPH = 2 * MIB
# The V2 runner's graph pool (0.7-1.5 GiB measured) holds, for the largest capture size, about
# five hidden-sized bf16 buffers per layer and rank (10.7 bytes per hidden unit) plus the
# logits in bf16 and fp32 (6 bytes per vocabulary entry); fitted on the six V2 calibration runs
# (within 0.25 GiB). In 0.26 it sits outside the budget and only decides a start above
# gpu_memory_utilization ~0.95; in the 0.32 projection it is reserved inside the budget.
CUDAGRAPH_V2_BYTES_PER_HIDDEN_UNIT = 10.7
CUDAGRAPH_V2_BYTES_PER_VOCAB_ENTRY = 6


def uses_v1_model_runner(model: ModelArchitecture, accounting: Accounting) -> bool:
    """vLLM 0.26 falls back to V1 for the models outside its V2 default (``sizing.runner``);
    later releases run every model on V2."""
    return accounting.moe_on_v1_runner and not uses_v2_model_runner(model)


def profile_requests(settings: ServingSettings) -> int:
    return min(settings.max_num_seqs, settings.max_num_batched_tokens)


def torch_activation_peak_bytes(
    model: ModelArchitecture,
    tensor_parallel_size: int,
    layers: range,
    first_stage: bool,
    last_stage: bool,
    settings: ServingSettings,
    act_bytes: int,
    v1_runner: bool,
    weight_format: WeightFormat | None = None,
) -> int:
    """Later pipeline stages also allocate the buffers that receive hidden states and
    residual from the previous stage (``make_empty_intermediate_tensors``), during the run."""
    received = 0 if first_stage else 2 * settings.max_num_batched_tokens * model.hidden_size * act_bytes
    peak = _forward_peak_bytes(model, tensor_parallel_size, layers, settings, act_bytes, weight_format)
    if last_stage:
        peak = max(peak, _sampler_stage_bytes(model, tensor_parallel_size, layers, settings, act_bytes, v1_runner))
    return peak + received


def _forward_peak_bytes(model, tp, layers, settings: ServingSettings, a: int, fmt: WeightFormat | None = None) -> int:
    tokens = settings.max_num_batched_tokens
    hidden = tokens * model.hidden_size * a
    slack = ALLOCATOR_SLACK_EAGER if settings.enforce_eager else ALLOCATOR_SLACK_COMPILED
    residual_copies = 3.0 if settings.enforce_eager else 2.0 + 1.0 / tp
    peak = _mla_projection_bytes(model, tp, tokens, a) + residual_copies * hidden if _has_mla(model, layers) else 0.0
    kinds = model.layer_counts(layers)
    if any(kind.mlp != MOE_MLP for kind in kinds):
        peak = max(peak, dense_mlp_bytes(model, tp, tokens, a, fmt) + residual_copies * hidden)
    if any(kind.mlp == MOE_MLP for kind in kinds):
        peak = max(
            peak,
            _moe_workspace_bytes(model, tp, tokens, a)
            + _moe_copies(tp, residual_copies) * hidden
            + _shared_expert_bytes(model, tp, tokens, a),
        )
    return int(peak + slack)


def dense_mlp_bytes(model: ModelArchitecture, tp: int, tokens: int, a: int, fmt: WeightFormat | None) -> int:
    """The largest moment of a dense MLP in the profile run, per weight format.

    Unquantized, SiLU-and-mul reads the gate/up output while writing its own: 3 x intermediate.
    W8A8 kernels (FP8/INT8, Cutlass) quantize each GEMM's input to one byte per element with an
    fp32 scale per token: the gate/up input's copy lives with the gate/up output, the activation's
    copy with the activation and the down output, both below the SiLU moment (calibration: FP8
    Llama-3.1-8B peaked at 1.78 GiB, bf16 at 1.77). Weight-only Marlin kernels add their fp32
    reduce buffer (SMs x 64 rows x 256 columns) and, with act-order, a permuted copy of the input;
    bitsandbytes dequantizes the weight to the activation dtype for the GEMM.
    """
    inter, h = model.intermediate_size // tp, model.hidden_size
    gate_up, act = 2 * tokens * inter * a, tokens * inter * a
    moments = [gate_up + act]
    if fmt is not None and fmt.quantizes_activations:
        moments += [tokens * (h + 4) + gate_up, act + tokens * (inter + 4) + tokens * h * a]
    elif fmt is not None and fmt.method == "bitsandbytes":
        moments += [tokens * h * a + h * 2 * inter * a + gate_up]
    elif fmt is not None and fmt.weight_bits < 16:
        reduce = MARLIN_MAX_SMS * min(-(-tokens // 16) * 16, 64) * 256 * 4
        permuted = fmt.row_bytes_per_input > 0
        moments += [
            gate_up + reduce + (tokens * h * a if permuted else 0),
            act + tokens * h * a + reduce + (act if permuted else 0),
        ]
    return int(max(moments))


def _has_mla(model: ModelArchitecture, layers: range) -> bool:
    return any(kind.attention == MLA_ATTENTION for kind in model.layer_counts(layers))


def _mla_projection_bytes(model: ModelArchitecture, tp: int, tokens: int, a: int) -> int:
    """An MLA layer's attention piece: the query heads, the compressed KV latent with its rotary
    key, and the attention output (the profile run skips the attention kernel itself)."""
    m = model.mla
    assert m is not None
    heads = model.num_attention_heads // tp
    width = heads * (m.qk_nope_head_dim + m.qk_rope_head_dim) + m.kv_lora_rank + m.qk_rope_head_dim
    return tokens * (width + heads * m.v_head_dim) * a


def mla_workspace_bytes(model: ModelArchitecture, settings: ServingSettings, block_size: int, act_bytes: int) -> int:
    """The MLA metadata builder's chunked-prefill workspace (``MLACommonMetadataBuilder``):
    ``min(max(8 x max_model_len, 4 x max_num_seqs x block), 128 Ki)`` tokens of the latent. It is
    allocated with the attention backends after the KV cache, so it sits outside the budget."""
    if model.mla is None or not any(kind.attention == MLA_ATTENTION for kind in model.kinds):
        return 0
    tokens = min(max(8 * settings.max_model_len, 4 * settings.max_num_seqs * block_size), 128 * 1024)
    return tokens * (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * act_bytes


def _moe_copies(tp: int, residual_copies: float) -> float:
    return residual_copies + 1.0 + 1.0 + (1.0 if tp > 1 else 0.0)


def _moe_workspace_bytes(model: ModelArchitecture, tp: int, tokens: int, a: int) -> int:
    moe = model.moe
    assert moe is not None
    n = 2 * moe.expert_intermediate_size // tp
    k = model.hidden_size
    topk = moe.experts_per_token
    workspace13 = max(tokens * topk * max(n // 2, k), tokens * k)
    workspace2 = tokens * topk * max(n, k)
    return (workspace13 + workspace2) * a


def _shared_expert_bytes(model: ModelArchitecture, tp: int, tokens: int, a: int) -> int:
    moe = model.moe
    assert moe is not None
    return 3 * tokens * (moe.shared_expert_intermediate_size // tp) * a


def _sampler_stage_bytes(model, tp, layers, settings: ServingSettings, a: int, v1_runner: bool) -> int:
    """The full hidden states stay alive while the sampler runs on one row per request.

    Each rank's ``[rows, vocab/TP]`` logits are all-gathered (a buffer plus a reordering copy of
    ``[rows, vocab]``). The V2 runner's dummy batch has no top-k/top-p, so its sampler adds one
    fp32 copy; the V1 runner's forces top-k/top-p (in place), then softmax and the exponential
    draw: fp32 logits, probs and noise. The MoE workspace persists through it.
    """
    rows = profile_requests(settings)
    vocab = model.vocab_size
    hidden = (settings.max_num_batched_tokens + rows) * model.hidden_size * a
    persistent = 0
    if any(kind.mlp == MOE_MLP for kind in model.layer_counts(layers)):
        persistent = _moe_workspace_bytes(model, tp, settings.max_num_batched_tokens, a)
    gathered = rows * (vocab // tp) * a + 2 * rows * vocab * a if tp > 1 else 0
    sampler = rows * vocab * (a + (12 if v1_runner else 4))
    return int(hidden + persistent + max(sampler, gathered))


def non_torch_increase_bytes(model: ModelArchitecture, tensor_parallel_size: int) -> int:
    base = NON_TORCH_INCREASE_SINGLE_GPU if tensor_parallel_size == 1 else NON_TORCH_INCREASE_TENSOR_PARALLEL
    return int(base + (NON_TORCH_INCREASE_MOE_KERNELS if model.moe is not None else 0))


def cuda_context_bytes(model: ModelArchitecture, tensor_parallel_size: int) -> int:
    total = CUDA_CONTEXT
    if tensor_parallel_size > 1:
        total += TENSOR_PARALLEL_COMMUNICATORS
        if model.moe is not None:
            total += EXPERT_PARALLEL_COMMUNICATOR
    return int(total)


def cudagraph_capture_sizes(settings: ServingSettings) -> list[int]:
    """vLLM's default capture sizes: 1, 2, 4, then steps of 8 below 256 and of 16 from 256, up to
    ``min(2 x max_num_seqs, 512, max_num_batched_tokens)`` (51 sizes for 1024 sequences)."""
    largest = min(2 * settings.max_num_seqs, 512, settings.max_num_batched_tokens)
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, 513, 16))
    return [s for s in sizes if s <= largest]


def cudagraph_bytes(
    model: ModelArchitecture,
    tensor_parallel_size: int,
    layers: range,
    last_stage: bool,
    settings: ServingSettings,
    v1_runner: bool,
) -> int:
    """The V1 runner's estimate (PIECEWISE graphs for every size, FULL decode graphs only up to
    ``max_num_seqs``), or what the V2 runner's capture takes."""
    if settings.enforce_eager:
        return 0
    if v1_runner:
        sizes = cudagraph_capture_sizes(settings)
        full = [s for s in sizes if s <= settings.max_num_seqs]
        return int(
            CUDAGRAPH_FIRST_CAPTURE
            + CUDAGRAPH_PIECEWISE_PER_GRAPH * max(0, len(sizes) - 1)
            + CUDAGRAPH_FULL_PER_GRAPH * max(0, len(full) - 1)
        )
    largest = max(cudagraph_capture_sizes(settings), default=0)
    per_token = CUDAGRAPH_V2_BYTES_PER_HIDDEN_UNIT * len(layers) * model.hidden_size / tensor_parallel_size
    if last_stage:
        per_token += CUDAGRAPH_V2_BYTES_PER_VOCAB_ENTRY * model.vocab_size
    return int(largest * per_token)
