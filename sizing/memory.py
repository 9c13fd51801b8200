"""vLLM's start-up memory accounting for one GPU, step by step.

Follows the v1 engine as released in vLLM 0.26.0 (``gpu_worker.determine_available_memory``),
the release the calibration set was measured on, or a projection of a later release
(``sizing.accounting``)::

    budget    = gpu_memory_utilization x total memory (as torch reports it)
    kv_cache  = budget - weights - torch activation peak of the profile run
                - non-torch memory growth during that run
                - CUDA-graph estimate (V1 model runner; in 0.26 the V2 runner captures
                  graphs outside the budget)
    blocks    = kv_cache / (page per layer x layers per KV cache group) (``sizing.kv_cache``)
    tokens    = max concurrency x max_model_len, as the start-up log reports them

The runner (V1/V2) follows ``sizing.runner``; the weight format, the checkpoint's own or one
applied at load, ``sizing.quantization``. The CUDA context and communication buffers, MLA's
chunked-prefill workspace and the V2 runner's CUDA graphs sit outside the budget; they decide
whether the budget fits on the device at all. What a plan may promise is the KV cache less the
margin of its path (``sizing.basis``).
"""

from __future__ import annotations

from sizing.accounting import VLLM_0_26, Accounting
from sizing.activation import (
    cuda_context_bytes,
    cudagraph_bytes,
    mla_workspace_bytes,
    non_torch_increase_bytes,
    torch_activation_peak_bytes,
    uses_v1_model_runner,
)
from sizing.architecture import DTYPE_BYTES, LINEAR_ATTENTION, ModelArchitecture
from sizing.basis import describe, extrapolated_parts, kv_margin_bytes
from sizing.estimate import MemoryEstimate
from sizing.gpus import Gpu
from sizing.kv_cache import KVCacheLayout, block_size_tokens, kv_cache_layout
from sizing.parallel import pipeline_stage_layers
from sizing.quantization import WeightFormat, resolve_weight_format
from sizing.rules import max_model_len_error, parallel_layout_error, scheduler_error
from sizing.search import largest_where
from sizing.settings import ServingSettings
from sizing.weights import weights_bytes_per_gpu

GIB = 1024**3


def activation_bytes(model: ModelArchitecture, settings: ServingSettings) -> int:
    """bf16 for ``auto`` unless the checkpoint is fp16; fp32 checkpoints are served as bf16."""
    if settings.dtype == "auto":
        return DTYPE_BYTES["float16"] if model.checkpoint_dtype == "float16" else DTYPE_BYTES["bfloat16"]
    return DTYPE_BYTES[settings.dtype]


def checkpoint_weight_format(model: ModelArchitecture, settings: ServingSettings) -> WeightFormat | None:
    """The format vLLM runs: the checkpoint's own unless the settings contradict it (SizingError)."""
    return resolve_weight_format(model.quantization, settings.quantization, model.name)


def estimate_memory(
    model: ModelArchitecture,
    gpu: Gpu,
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    settings: ServingSettings,
    gpus_per_node: int = 8,
    accounting: Accounting = VLLM_0_26,
) -> MemoryEstimate:
    settings = settings.resolved(gpu)
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    reason = (
        parallel_layout_error(model, tp, pp, gpus_per_node, settings)
        or max_model_len_error(model, settings.max_model_len)
        or scheduler_error(settings)
    )
    if not reason and any(kind.attention == LINEAR_ATTENTION for kind in model.kinds):
        reason = (
            f"{model.name} has linear-attention/state-space layers: the sizing does not model their "
            "per-request state, so it cannot predict vLLM's KV cache for this model"
        )
    if reason:
        return _invalid(model, gpu, tp, pp, settings, reason, accounting)

    fmt = checkpoint_weight_format(model, settings)
    act_bytes = activation_bytes(model, settings)
    total = gpu.torch_total_memory_gib * GIB
    budget = settings.gpu_memory_utilization * total
    v1_runner = uses_v1_model_runner(model, accounting)
    graphs_in_budget = v1_runner or accounting.v2_cudagraph_in_budget
    stages = pipeline_stage_layers(model.num_layers, pp)
    block = block_size_tokens(model, gpu, settings.kv_cache_dtype_bytes)

    worst = None
    for index, layers in enumerate(stages):
        first, last = index == 0, index == len(stages) - 1
        weights = weights_bytes_per_gpu(model, tp, layers, first, last, fmt, act_bytes)
        peak = torch_activation_peak_bytes(model, tp, layers, first, last, settings, act_bytes, v1_runner, fmt)
        non_torch = non_torch_increase_bytes(model, tp)
        graphs = cudagraph_bytes(model, tp, layers, last, settings, v1_runner)
        kv_bytes = budget - weights - peak - non_torch - (graphs if graphs_in_budget else 0)
        layout = kv_cache_layout(model, layers, tp, settings.kv_cache_dtype_bytes, block)
        batched = settings.max_num_batched_tokens
        stage = dict(
            layers=layers,
            layout=layout,
            weights=weights,
            peak=peak,
            non_torch=non_torch,
            graphs=graphs,
            kv_bytes=kv_bytes,
            per_token=layout.bytes_per_token,
            tokens=layout.tokens(kv_bytes, settings.max_model_len, batched),
            concurrency=layout.max_concurrency(kv_bytes, settings.max_model_len, batched),
            needed=layout.bytes_needed_per_request(settings.max_model_len, batched),
        )
        context = cuda_context_bytes(model, tp)
        workspace = mla_workspace_bytes(model, settings, block, act_bytes)
        stage["outside"] = context + workspace + (0 if graphs_in_budget else graphs)
        stage["verdict"] = _verdict(model, gpu, settings, total, budget, context, stage)
        if worst is None or _worse(stage, worst):
            worst = stage
    assert worst is not None
    outside = worst["outside"]
    starts, why = worst["verdict"]
    max_concurrency = worst["concurrency"]
    extrapolated = extrapolated_parts(
        model, range(model.num_layers), fmt, v1_runner, settings.kv_cache_dtype_bytes, pp, tp
    )
    if not accounting.measured:  # a release no run measured: its accounting is itself a projection
        extrapolated += (f"vLLM {accounting.vllm_release}'s accounting (projected)",)
    in_budget = worst["weights"] + worst["peak"] + worst["non_torch"] + (worst["graphs"] if graphs_in_budget else 0)
    margin = kv_margin_bytes(extrapolated, in_budget)
    promised_bytes = max(0.0, worst["kv_bytes"] - margin)
    layout: KVCacheLayout = worst["layout"]
    batched = settings.max_num_batched_tokens
    return MemoryEstimate(
        model=model.name,
        gpu=gpu.name,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        settings=settings,
        valid=True,
        starts=starts,
        reason=why,
        budget_gib_per_gpu=budget / GIB,
        weights_gib_per_gpu=worst["weights"] / GIB,
        activation_gib_per_gpu=worst["peak"] / GIB,
        non_torch_gib_per_gpu=worst["non_torch"] / GIB,
        cudagraph_gib_per_gpu=worst["graphs"] / GIB,
        cudagraph_in_budget=graphs_in_budget,
        kv_cache_gib_per_gpu=max(0.0, worst["kv_bytes"]) / GIB,
        kv_cache_bytes_per_token_per_gpu=worst["per_token"],
        kv_cache_tokens=worst["tokens"],
        kv_cache_gib_needed_per_request=worst["needed"] / GIB,
        max_concurrency=max_concurrency,
        outside_budget_gib_per_gpu=outside / GIB,
        accounting=accounting.label,
        basis=describe(extrapolated),
        kv_margin_gib_per_gpu=margin / GIB,
        promised_kv_cache_tokens=layout.tokens(promised_bytes, settings.max_model_len, batched),
        promised_max_concurrency=layout.max_concurrency(promised_bytes, settings.max_model_len, batched),
        weight_format=fmt.label() if fmt is not None else "unquantized",
        model_runner="V1" if v1_runner else "V2",
    )


def _worse(stage: dict, other: dict) -> bool:
    """vLLM stops at the first stage that fails; otherwise every stage gets the fewest blocks."""
    if stage["verdict"][0] != other["verdict"][0]:
        return not stage["verdict"][0]
    return stage["tokens"] < other["tokens"]


def _verdict(model, gpu, settings, total, budget, context, stage) -> tuple[bool, str]:
    """The first failure vLLM would hit, in its order: free memory at worker start, loading,
    the KV cache check, then capturing CUDA graphs outside the budget."""
    free_at_init = total - context
    if budget > free_at_init:
        return False, (
            f"Free memory on device ({free_at_init / GIB:.2f}/{total / GIB:.2f} GiB) on startup is "
            f"less than desired GPU memory utilization ({settings.gpu_memory_utilization}, "
            f"{budget / GIB:.2f} GiB). Decrease GPU memory utilization."
        )
    if stage["weights"] + stage["peak"] > free_at_init:
        return False, (
            f"CUDA out of memory: {stage['weights'] / GIB:.2f} GiB of weights and a "
            f"{stage['peak'] / GIB:.2f} GiB activation peak per GPU exceed the "
            f"{free_at_init / GIB:.2f} GiB free on a {gpu.name}."
        )
    kv = stage["kv_bytes"]
    if kv <= 0:
        return False, (
            "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
            f"when initializing the engine. (weights {stage['weights'] / GIB:.2f} GiB + activations "
            f"{stage['peak'] / GIB:.2f} GiB exceed the {budget / GIB:.2f} GiB budget per GPU)"
        )
    if stage["needed"] > kv:
        estimated = _estimated_max_model_len(model, stage, settings)
        return False, (
            f"To serve at least one request with the models's max seq len "
            f"({settings.max_model_len}), ({stage['needed'] / GIB:.2f} GiB KV cache is needed, "
            f"which is larger than the available KV cache memory ({kv / GIB:.2f} GiB). Based on "
            f"the available memory, the estimated maximum model length is {estimated}."
        )
    outside = stage["outside"]
    if budget + outside > total:
        return False, (
            f"CUDA out of memory while capturing CUDA graphs: the {budget / GIB:.2f} GiB budget plus "
            f"{outside / GIB:.2f} GiB outside it exceed the {total / GIB:.2f} GiB of a {gpu.name}. "
            "Lower gpu_memory_utilization."
        )
    return True, "starts"


def _estimated_max_model_len(model, stage, settings: ServingSettings) -> int:
    """vLLM's ``estimate_max_model_len``: binary search for the longest context whose single
    request fits the KV cache."""

    layout: KVCacheLayout = stage["layout"]

    def fits(length: int) -> bool:
        return layout.bytes_needed_per_request(length, settings.max_num_batched_tokens) <= stage["kv_bytes"]

    return largest_where(fits, settings.max_model_len)


def _invalid(model, gpu, tp, pp, settings, reason, accounting: Accounting) -> MemoryEstimate:
    return MemoryEstimate(
        model=model.name,
        gpu=gpu.name,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        settings=settings,
        valid=False,
        starts=False,
        reason=reason,
        budget_gib_per_gpu=settings.gpu_memory_utilization * gpu.torch_total_memory_gib,
        weights_gib_per_gpu=0.0,
        activation_gib_per_gpu=0.0,
        non_torch_gib_per_gpu=0.0,
        cudagraph_gib_per_gpu=0.0,
        cudagraph_in_budget=False,
        kv_cache_gib_per_gpu=0.0,
        kv_cache_bytes_per_token_per_gpu=0,
        kv_cache_tokens=0,
        kv_cache_gib_needed_per_request=0.0,
        max_concurrency=0.0,
        outside_budget_gib_per_gpu=0.0,
        accounting=accounting.label,
    )
