"""The checks vLLM makes before it loads anything, with vLLM's own wording.

Each returns the reason a layout is rejected, or None. They run before any memory estimate:
a TP size vLLM refuses (TP=3 for a 70B model: 64 heads are not divisible by 3) is not a
memory question.
"""

from __future__ import annotations

from sizing.architecture import ModelArchitecture
from sizing.settings import ServingSettings
from sizing.weights import GROUP_SIZE


def parallel_layout_error(
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
    if settings.quantization in ("awq", "gptq"):
        row_inputs = {"down_proj": inter // tp}
        if model.mla is None:
            row_inputs["o_proj"] = model.num_attention_heads * model.head_dim // tp
        for layer, size in row_inputs.items():
            if size % GROUP_SIZE:
                return (
                    f"The input size is not aligned with the quantized weight shape. This can be "
                    f"caused by too large tensor parallel size. ({settings.quantization.upper()} "
                    f"{layer} input per rank is {size}, not a multiple of group size {GROUP_SIZE}.)"
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


def max_model_len_error(model: ModelArchitecture, max_model_len: int) -> str | None:
    derived = model.max_position_embeddings
    if max_model_len > derived:
        return (
            f"User-specified max_model_len ({max_model_len}) is greater than the derived "
            f"max_model_len (max_position_embeddings={derived} in model's config.json). "
            f"Use a max_model_len of at most {derived}."
        )
    return None
