"""The model runner vLLM 0.26 picks, from the architecture (not from "is MoE"), and what follows."""

import json

import pytest

from sizing.accounting import VLLM_0_26, VLLM_0_32
from sizing.activation import uses_v1_model_runner
from sizing.architecture import ModelArchitecture
from sizing.gpus import GPUS
from sizing.memory import estimate_memory
from sizing.models import CONFIG_DIR, load_model
from sizing.runner import mla_attention_backend, uses_v2_model_runner
from sizing.settings import ServingSettings


@pytest.mark.parametrize(
    "name, v2",
    [
        ("llama-3.1-8b", True),
        ("llama-3.1-70b-fp8", True),  # quantized dense: V2 (the FP8 calibration runs logged it)
        ("gemma-2-27b", True),
        ("mixtral-8x7b", False),  # MoE outside the default set: V1 (calibration run e)
        ("mixtral-8x22b", False),
        ("deepseek-v2-lite", True),  # MoE + MLA, but DeepseekV2ForCausalLM is in the V2 default set
    ],
)
def test_runner_follows_vllms_default_set_and_moe(name, v2):
    assert uses_v2_model_runner(load_model(name)) is v2


def test_qwen2_moe_is_in_the_v2_default_set():
    config = json.loads((CONFIG_DIR / "Qwen2.5-7B.json").read_text())
    config.update(
        architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe", num_experts=8, moe_intermediate_size=512
    )
    assert uses_v2_model_runner(ModelArchitecture.from_config(config, name="qwen2-moe"))
    config.update(architectures=["SomeOtherMoeForCausalLM"], _sizing_architecture="Qwen2MoeForCausalLM")
    assert not uses_v2_model_runner(ModelArchitecture.from_config(config, name="other-moe"))


def test_only_the_v1_runner_subtracts_its_cuda_graph_estimate():
    settings = ServingSettings(max_model_len=8192, max_num_batched_tokens=8192, max_num_seqs=256)
    deepseek = estimate_memory(load_model("deepseek-v2-lite"), GPUS["H100-80GB"], 1, 1, settings)
    mixtral = estimate_memory(load_model("mixtral-8x7b"), GPUS["H100-80GB"], 2, 1, settings)
    assert deepseek.model_runner == "V2" and not deepseek.cudagraph_in_budget
    assert mixtral.model_runner == "V1" and mixtral.cudagraph_in_budget


def test_later_releases_run_every_model_on_v2():
    assert uses_v1_model_runner(load_model("mixtral-8x7b"), VLLM_0_26)
    assert not uses_v1_model_runner(load_model("mixtral-8x7b"), VLLM_0_32)


def test_mla_backend_by_gpu_and_kv_dtype():
    model = load_model("deepseek-v2-lite")
    assert mla_attention_backend(model, GPUS["H200-141GB"], 2) == "FLASH_ATTN_MLA"
    assert mla_attention_backend(model, GPUS["H100-80GB"], 1) == "FLASHMLA"
    assert mla_attention_backend(model, GPUS["A100-80GB"], 2) == "TRITON_MLA"
    assert mla_attention_backend(load_model("llama-3.1-8b"), GPUS["H100-80GB"], 2) is None


def test_mla_chunked_prefill_workspace_sits_outside_the_budget():
    """min(max(8 x 8192, 4 x 256 x 16), 128 Ki) = 65,536 tokens of a 576-wide bf16 latent: 72 MiB."""
    settings = ServingSettings(max_model_len=8192, max_num_batched_tokens=8192, max_num_seqs=256)
    deepseek = estimate_memory(load_model("deepseek-v2-lite"), GPUS["H100-80GB"], 1, 1, settings)
    graphs_and_context = deepseek.outside_budget_gib_per_gpu - 65536 * 576 * 2 / 2**30
    assert graphs_and_context == pytest.approx(deepseek.cudagraph_gib_per_gpu + 0.51, abs=0.01)
