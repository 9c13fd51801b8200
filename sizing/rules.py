"""The checks vLLM makes before it loads anything, with vLLM's own wording.

Each returns the reason a layout is rejected, or None. They run before any memory estimate:
a TP size vLLM refuses (TP=3 for a 70B model: 64 heads are not divisible by 3) is not a
memory question.
"""

from __future__ import annotations

from sizing.architecture import ModelArchitecture
from sizing.quantization import resolve_weight_format
from sizing.settings import ServingSettings
from sizing.weights import GROUP_SIZE

MARLIN_MIN_THREAD_N = 64
FLOAT16_UNSTABLE_MODEL_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text", "glm4"})


def parallel_layout_error(
    model: ModelArchitecture,
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    gpus_per_node: int,
    settings: ServingSettings,
) -> str | None:
    """vLLM's reason, followed by the tensor-parallel sizes this model does accept."""
    reason = _layout_error(model, tensor_parallel_size, pipeline_parallel_size, gpus_per_node, settings)
    if reason and reason.startswith(TP_REASONS):
        allowed = valid_tensor_parallel_sizes(model, gpus_per_node, settings)
        accepted = ", ".join(map(str, allowed)) if allowed else "none on one node"
        reason += f" {model.name} accepts tensor_parallel_size {accepted}."
    return reason


def valid_tensor_parallel_sizes(model: ModelArchitecture, gpus_per_node: int, settings: ServingSettings) -> list[int]:
    return [tp for tp in range(1, gpus_per_node + 1) if _layout_error(model, tp, 1, gpus_per_node, settings) is None]


TP_REASONS = ("tensor_parallel_size (", "Total number of", "Tensor parallel size", "The MLP intermediate", "Weight ")


def _layout_error(
    model: ModelArchitecture,
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    gpus_per_node: int,
    settings: ServingSettings,
) -> str | None:
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    if tp < 1 or pp < 1:
        return f"tensor_parallel_size ({tp}) and pipeline_parallel_size ({pp}) must be at least 1."
    if tp > gpus_per_node:
        return (
            f"tensor_parallel_size ({tp}) exceeds the {gpus_per_node} GPUs of one node: tensor "
            "parallelism needs NVLink inside one node; span nodes with pipeline parallelism."
        )
    if model.num_attention_heads % tp:
        return (
            f"Total number of attention heads ({model.num_attention_heads}) must be divisible by "
            f"tensor parallel size ({tp})."
        )
    if model.mla is None:
        kv = model.num_kv_heads
        if kv >= tp and kv % tp:
            return f"Total number of KV heads ({kv}) must be divisible by tensor parallel size ({tp})."
        if kv < tp and tp % kv:
            return (
                f"Tensor parallel size ({tp}) must be a multiple of the number of KV heads ({kv}) "
                "when it exceeds them (each rank then holds a replica of one KV head)."
            )
    inter = model.moe.expert_intermediate_size if model.moe else model.intermediate_size
    if inter % tp or (model.moe is None and model.intermediate_size % tp):
        return f"The MLP intermediate size ({inter}) is not divisible by tensor parallel size ({tp})."
    fmt = resolve_weight_format(model.quantization, settings.quantization, model.name)
    if fmt is not None and fmt.weight_only_4bit:
        reason = _marlin_shape_error(model, tp, inter)
        if reason:
            return reason
    if settings.dtype == "float16" and model.model_type in FLOAT16_UNSTABLE_MODEL_TYPES:
        return (
            f"The model type '{model.model_type}' does not support float16. Reason: Numerical "
            "instability. Please use bfloat16 or float32 instead."
        )
    if pp > 1:
        if not model.supports_pipeline_parallel:
            return (
                f"Pipeline parallelism is not supported for this model ({model.architecture}). "
                "Supported models implement the `SupportsPP` interface."
            )
        if pp > model.num_layers:
            return f"pipeline_parallel_size ({pp}) exceeds the model's {model.num_layers} layers."
    return None


def scheduler_error(settings: ServingSettings) -> str | None:
    """``SchedulerConfig._verify_args``: every sequence needs at least one token per step."""
    if settings.max_num_batched_tokens < settings.max_num_seqs:
        return (
            f"max_num_batched_tokens ({settings.max_num_batched_tokens}) must be greater than or "
            f"equal to max_num_seqs ({settings.max_num_seqs})."
        )
    return None


def max_model_len_error(model: ModelArchitecture, max_model_len: int) -> str | None:
    derived = model.max_position_embeddings
    if max_model_len > derived:
        return (
            f"User-specified max_model_len ({max_model_len}) is greater than the derived "
            f"max_model_len (max_position_embeddings={derived} or model_max_length=None in model's "
            f"config.json). Use a max_model_len of at most {derived}."
        )
    return None


def _marlin_shape_error(model: ModelArchitecture, tp: int, inter: int) -> str | None:
    """AWQ/GPTQ run on Marlin kernels on Ampere and Hopper (the stack passes ``awq_marlin`` /
    ``gptq_marlin``): every column-parallel output per rank must be a multiple of 64 and every
    row-parallel input per rank a multiple of 128, which is also the quantization group size."""
    shapes: list[tuple[str, str, int]] = []  # in the order vLLM builds the layers
    if model.mla is None:
        kv_heads = max(1, model.num_kv_heads // tp)
        shapes.append(("qkv_proj", "output", (model.num_attention_heads // tp + 2 * kv_heads) * model.head_dim))
        shapes.append(("o_proj", "input", model.num_attention_heads * model.head_dim // tp))
    shapes += [("gate_up_proj", "output", 2 * inter // tp), ("down_proj", "input", inter // tp)]
    for layer, side, size in shapes:
        if side == "output" and size % MARLIN_MIN_THREAD_N:
            return (
                f"Weight output_size_per_partition = {size} is not divisible by  min_thread_n = "
                f"{MARLIN_MIN_THREAD_N}. Consider reducing tensor_parallel_size or running with "
                f"--quantization gptq. ({layer})"
            )
        if side == "input" and size % GROUP_SIZE:
            return (
                f"Weight input_size_per_partition = {size} is not divisible by min_thread_k = "
                f"{GROUP_SIZE}. Consider reducing tensor_parallel_size or running with "
                f"--quantization gptq. ({layer})"
            )
    return None
