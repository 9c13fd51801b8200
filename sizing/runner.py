"""Which model runner vLLM picks for a model, and the attention backend of MLA layers.

vLLM 0.26 (``vllm/config/vllm.py``: ``VllmConfig.use_v2_model_runner`` and
``_is_default_v2_model_runner_model``), with ``VLLM_USE_V2_MODEL_RUNNER`` unset and no
speculative decoding or prefill context parallelism:

    default = any(arch in DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES for arch in architectures)
    if model_config.is_hybrid and not default: V1        # Mamba/linear-attention hybrids
    if model_config.is_attention_free: V1
    V2 if default or not model_config.is_moe else V1

so dense models (quantized or not) run on V2, MoE models on V1 unless their architecture is in
the default set: DeepSeek-V2/V2-Lite (MLA + MoE) and Qwen2-MoE run on V2, Mixtral on V1. The
calibration agrees: every dense record (bf16 on H100, FP8 on H200) logged "Using V2 Model
Runner", Mixtral the V1 runner, and DeepSeek-V2-Lite ran on V2 with FLASH_ATTN_MLA.

Provenance: the v0.26.0 tag could not be fetched here (the repository snapshot exceeds the size
limit); the rule above was read from vllm/config/vllm.py in indexed vLLM sources of a slightly
later 0.2x release, whose default set also lists architectures that postdate 0.26 (Inkling,
Kimi-K3, LongCat; irrelevant to this catalog). The 0.23 rule additionally sent quantized models to
V1; 0.26 did not (the FP8 runs logged V2).

The V1 runner subtracts its CUDA-graph estimate from the KV budget and its profile-run sampler
forces top-k/top-p; the V2 runner captures graphs outside the budget (in 0.26) and samples the
dummy batch without them (``sizing.activation``).

MLA on Hopper: the backend priority puts FLASH_ATTN_MLA (compute capability 9.x, bf16 KV only,
block sizes any multiple of 16) before FlashMLA (64-token pages); an fp8 KV cache therefore
lands on FlashMLA. Elsewhere MLA runs TRITON_MLA with 16-token blocks.
"""

from __future__ import annotations

from sizing.architecture import LINEAR_ATTENTION, MLA_ATTENTION, ModelArchitecture
from sizing.gpus import Gpu

# vLLM 0.26, vllm/config/vllm.py DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES: the MoE and hybrid
# architectures validated on the V2 runner (dense generative models need no entry).
DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES = frozenset(
    {
        "DeepseekV2ForCausalLM",
        "GraniteMoeForCausalLM",
        "Qwen2MoeForCausalLM",
    }
)


def uses_v2_model_runner(model: ModelArchitecture) -> bool:
    default = model.architecture in DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES
    kinds = {kind.attention for kind in model.kinds}
    hybrid = LINEAR_ATTENTION in kinds and len(kinds) > 1
    if hybrid and not default:
        return False
    if kinds == {LINEAR_ATTENTION}:
        return False
    return default or model.moe is None


def mla_attention_backend(model: ModelArchitecture, gpu: Gpu, kv_cache_dtype_bytes: int) -> str | None:
    if not any(kind.attention == MLA_ATTENTION for kind in model.kinds):
        return None
    if gpu.compute_capability[0] == 9:
        return "FLASH_ATTN_MLA" if kv_cache_dtype_bytes == 2 else "FLASHMLA"
    return "TRITON_MLA"
