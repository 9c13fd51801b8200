"""The seed recipe's TP table, checked against vLLM's accounting; each case says why it was wrong."""

import pytest

from sizing.errors import NoFitError
from sizing.gpus import GPUS
from sizing.models import load_model
from sizing.planner import check_layout, plan_model
from sizing.settings import ServingSettings


def test_seed_rule_of_thumb_gives_tp3_for_70b_which_vllm_rejects():
    estimate = check_layout(
        load_model("llama-3.1-70b"), ServingSettings(max_model_len=8192), gpu="H100-80GB", tensor_parallel_size=3
    )
    assert not estimate.valid
    assert "attention heads (64) must be divisible by tensor parallel size (3)" in estimate.reason
    assert "accepts tensor_parallel_size 1, 2, 4, 8." in estimate.reason, "the error says what would work"


def test_70b_at_its_default_131072_context_does_not_start_at_tp2_on_80gb():
    """The seed says TP=2 for 70B on 80 GB GPUs: the weights fit, the KV cache for 128k does not."""
    estimate = check_layout(
        load_model("llama-3.1-70b"), ServingSettings(max_model_len=131072), gpu="H100-80GB", tensor_parallel_size=2
    )
    assert estimate.valid and not estimate.starts
    assert "KV cache is needed, which is larger than the available KV cache memory" in estimate.reason
    assert "estimated maximum model length is" in estimate.reason


def test_405b_in_bf16_does_not_fit_one_8x80gb_node():
    model = load_model("llama-3.1-405b")
    estimate = check_layout(model, ServingSettings(max_model_len=32768), gpu="H100-80GB", tensor_parallel_size=8)
    assert not estimate.starts
    assert estimate.weights_gib_per_gpu > 80 * 0.9


def test_405b_in_bf16_needs_tp8_pp2_on_80gb_gpus():
    plan = plan_model(load_model("llama-3.1-405b"), ServingSettings(max_model_len=32768), gpus=["H100-80GB"])
    assert (plan.tensor_parallel_size, plan.pipeline_parallel_size) == (8, 2)
    assert plan.nodes == 2 and plan.gpus == 16


def test_405b_in_bf16_fits_one_8x_h200_node():
    plan = plan_model(load_model("llama-3.1-405b"), ServingSettings(max_model_len=32768), gpus=["H200-141GB"])
    assert (plan.tensor_parallel_size, plan.pipeline_parallel_size, plan.nodes) == (8, 1, 1)


def test_405b_weights_are_756_gib():
    model = load_model("llama-3.1-405b")
    assert model.parameters * 2 / 2**30 == pytest.approx(756, abs=1)


@pytest.mark.parametrize("name", ["llama-3.1-70b", "llama-2-70b", "qwen2.5-72b", "codellama-34b"])
@pytest.mark.parametrize("gpu", list(GPUS))
@pytest.mark.parametrize("max_model_len", [4096, 16384])
def test_tp3_is_never_chosen(name, gpu, max_model_len):
    model = load_model(name)
    try:
        plan = plan_model(
            model, ServingSettings(max_model_len=min(max_model_len, model.max_position_embeddings)), gpus=[gpu]
        )
    except NoFitError:
        return
    assert plan.tensor_parallel_size in (1, 2, 4, 8)


def test_seed_7b_13b_tp1_claims_hold_on_80gb():
    for name in ("mistral-7b-v0.1", "llama-2-13b"):
        plan = plan_model(load_model(name), ServingSettings(max_model_len=4096), gpus=["A100-80GB"])
        assert plan.tensor_parallel_size == 1
