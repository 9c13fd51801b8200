from dataclasses import replace

import pytest

from sizing.errors import NoFitError, SizingError
from sizing.models import load_model
from sizing.planner import check_layout, is_marginal, plan_model
from sizing.rules import parallel_layout_error
from sizing.settings import ServingSettings


def test_fewest_gpus_then_cheapest_instance():
    plan = plan_model(
        load_model("llama-3.1-8b"), ServingSettings(max_model_len=8192), gpus=["H200-141GB", "H100-80GB", "A100-80GB"]
    )
    assert plan.gpus == 1
    assert plan.instance_type == "p4de.24xlarge", "A100-80GB is the cheapest GPU-hour that fits"


def test_explicit_tp_is_honoured():
    plan = plan_model(
        load_model("llama-3.1-8b"), ServingSettings(max_model_len=8192), gpus=["H100-80GB"], tensor_parallel_size=2
    )
    assert plan.tensor_parallel_size == 2 and plan.gpus == 2


def test_explicit_tp_vllm_rejects_is_refused_with_vllms_reason():
    with pytest.raises(NoFitError, match="must be divisible by tensor parallel size"):
        plan_model(
            load_model("llama-3.1-70b"), ServingSettings(max_model_len=8192), gpus=["H100-80GB"], tensor_parallel_size=3
        )


def test_pipeline_parallel_refused_for_models_without_pp():
    from sizing.architecture import ModelArchitecture

    config = {
        "architectures": ["FalconForCausalLM"],
        "model_type": "falcon",
        "_sizing_architecture": "LlamaForCausalLM",  # sized as Llama-shaped, run by vLLM as Falcon
        "hidden_size": 1024,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "intermediate_size": 4096,
        "vocab_size": 1000,
        "max_position_embeddings": 2048,
    }
    model = ModelArchitecture.from_config(config, name="tiny-falcon")
    reason = parallel_layout_error(model, 1, 2, 8, ServingSettings(max_model_len=1024))
    assert reason and "SupportsPP" in reason


def test_no_fit_lists_attempts_and_what_would_work():
    with pytest.raises(NoFitError) as error:
        plan_model(
            load_model("llama-3.1-405b"),
            ServingSettings(max_model_len=131072),
            gpus=["A100-80GB"],
            tensor_parallel_size=8,
            pipeline_parallel_size=1,
        )
    message = str(error.value)
    assert "A100-80GB TP=8 PP=1" in message
    assert "What would work" in message
    assert any("H200-141GB" in s for s in error.value.suggestions), "a larger GPU is offered"
    assert any(s.startswith("quantization=fp8") for s in error.value.suggestions)


def test_longest_fitting_max_model_len_suggested_actually_starts():
    model = load_model("llama-3.1-70b")
    with pytest.raises(NoFitError) as error:
        plan_model(model, ServingSettings(max_model_len=131072), gpus=["H100-80GB"], tensor_parallel_size=2)
    suggestion = next(s for s in error.value.suggestions if s.startswith("max_model_len="))
    length = int(suggestion.split("=")[1].split()[0])
    assert 0 < length < 131072
    fits = check_layout(model, ServingSettings(max_model_len=length), gpu="H100-80GB", tensor_parallel_size=2)
    too_long = check_layout(model, ServingSettings(max_model_len=length + 16), gpu="H100-80GB", tensor_parallel_size=2)
    assert fits.starts and not too_long.starts


def _marginal_tp2_context(model) -> int:
    """A context at which TP=2 on H100 starts, but with under 1 GiB of KV headroom."""
    return next(
        L
        for L in range(29000, 15000, -512)
        if (e := check_layout(model, ServingSettings(max_model_len=L), gpu="H100-80GB", tensor_parallel_size=2)).starts
        and is_marginal(e)
    )


def test_marginal_smallest_layout_is_passed_over_for_the_next_size_up():
    model = load_model("llama-3.1-70b")
    length = _marginal_tp2_context(model)
    plan = plan_model(model, ServingSettings(max_model_len=length), gpus=["H100-80GB"])
    assert plan.tensor_parallel_size == 4 and not plan.marginal
    assert any("marginal" in note for note in plan.notes)


def test_marginal_plan_is_flagged_when_nothing_larger_fits():
    model = load_model("llama-3.1-70b")
    length = _marginal_tp2_context(model)
    plan = plan_model(model, ServingSettings(max_model_len=length), gpus=["H100-80GB"], tensor_parallel_size=2)
    assert plan.marginal and plan.tensor_parallel_size == 2


def test_min_concurrency_drives_size():
    model = load_model("llama-3.1-8b")
    small = plan_model(model, ServingSettings(max_model_len=32768), gpus=["A100-40GB"])
    busy = plan_model(model, ServingSettings(max_model_len=32768), gpus=["A100-40GB"], min_concurrency=40)
    assert busy.gpus > small.gpus
    assert busy.estimate.max_concurrency >= 40


def test_settings_reject_bad_values_naming_the_field():
    with pytest.raises(SizingError, match="gpu_memory_utilization"):
        ServingSettings(max_model_len=4096, gpu_memory_utilization=1.5)
    with pytest.raises(SizingError, match="quantization 'int3'.*fp8"):
        ServingSettings(max_model_len=4096, quantization="int3")


def test_max_model_len_above_model_limit_is_rejected_with_the_limit():
    estimate = check_layout(
        load_model("llama-2-7b"), ServingSettings(max_model_len=8192), gpu="H100-80GB", tensor_parallel_size=1
    )
    assert not estimate.valid and "max_position_embeddings=4096" in estimate.reason


def test_awq_group_size_rule():
    # Llama-3.1-8B: down_proj input 14336/8 = 1792 = 14 x 128 is aligned; Qwen2.5-72B's gate_up output
    # 2 x 29568/8 = 7392 is not a multiple of 64 (why Qwen2.5-72B-AWQ ships a padded intermediate size).
    settings = ServingSettings(max_model_len=4096, quantization="awq")
    assert check_layout(load_model("llama-3.1-8b"), settings, gpu="H100-80GB", tensor_parallel_size=8).valid
    assert check_layout(load_model("qwen2.5-72b"), settings, gpu="H100-80GB", tensor_parallel_size=1).valid
    estimate = check_layout(load_model("qwen2.5-72b"), settings, gpu="H100-80GB", tensor_parallel_size=8)
    assert (
        not estimate.valid
        and "output_size_per_partition = 7392 is not divisible by  min_thread_n = 64" in estimate.reason
    )


def test_gemma2_refuses_float16():
    estimate = check_layout(
        load_model("gemma-2-27b"),
        ServingSettings(max_model_len=4096, dtype="float16"),
        gpu="H100-80GB",
        tensor_parallel_size=1,
    )
    assert not estimate.valid and "does not support float16" in estimate.reason


def test_fp8_kv_cache_halves_bytes_per_token():
    model = load_model("llama-3.1-70b")
    auto = check_layout(model, ServingSettings(max_model_len=8192), gpu="H100-80GB", tensor_parallel_size=4)
    fp8 = check_layout(
        model, ServingSettings(max_model_len=8192, kv_cache_dtype="fp8"), gpu="H100-80GB", tensor_parallel_size=4
    )
    assert fp8.kv_cache_bytes_per_token_per_gpu * 2 == auto.kv_cache_bytes_per_token_per_gpu


def test_fp8_weights_halve_linear_weights():
    model = load_model("llama-3.1-70b")
    bf16 = check_layout(model, ServingSettings(max_model_len=8192), gpu="H100-80GB", tensor_parallel_size=4)
    fp8 = check_layout(
        model, ServingSettings(max_model_len=8192, quantization="fp8"), gpu="H100-80GB", tensor_parallel_size=4
    )
    assert 0.5 < fp8.weights_gib_per_gpu / bf16.weights_gib_per_gpu < 0.55


def test_kv_heads_replicate_when_tp_exceeds_them():
    model = load_model("llama-3.1-70b")  # 8 KV heads
    tp8 = check_layout(model, ServingSettings(max_model_len=8192), gpu="H200-141GB", tensor_parallel_size=8)
    assert tp8.kv_cache_bytes_per_token_per_gpu == 2 * 1 * 128 * 2 * 80
    mla = check_layout(
        load_model("deepseek-v2-lite"), ServingSettings(max_model_len=8192), gpu="H100-80GB", tensor_parallel_size=2
    )
    assert mla.kv_cache_bytes_per_token_per_gpu == (512 + 64) * 2 * 27, "MLA latent is not split across TP"


def test_pipeline_stages_put_the_remainder_before_the_last_stage():
    from sizing.parallel import pipeline_stage_layers

    stages = pipeline_stage_layers(126, 4)
    assert [len(s) for s in stages] == [31, 32, 32, 31]
    assert stages[0].start == 0 and stages[-1].stop == 126


def test_projected_release_accounting_reserves_cuda_graphs_inside_the_budget():
    from sizing.accounting import VLLM_0_26, VLLM_0_32

    model, settings = load_model("llama-3.1-8b"), ServingSettings(max_model_len=8192)
    measured = check_layout(model, settings, gpu="H100-80GB", tensor_parallel_size=1, accounting=VLLM_0_26)
    projected = check_layout(model, settings, gpu="H100-80GB", tensor_parallel_size=1, accounting=VLLM_0_32)
    assert not measured.cudagraph_in_budget and projected.cudagraph_in_budget
    assert projected.kv_cache_gib_per_gpu == pytest.approx(
        measured.kv_cache_gib_per_gpu - measured.cudagraph_gib_per_gpu, abs=0.01
    )


def test_kv_error_names_the_longest_context_that_would_start():
    model = load_model("llama-3.1-70b")
    failing = check_layout(model, ServingSettings(max_model_len=131072), gpu="H100-80GB", tensor_parallel_size=2)
    named = int(failing.reason.split("estimated maximum model length is ")[1].rstrip("."))
    at_named = check_layout(model, ServingSettings(max_model_len=named), gpu="H100-80GB", tensor_parallel_size=2)
    beyond = check_layout(model, ServingSettings(max_model_len=named + 1), gpu="H100-80GB", tensor_parallel_size=2)
    assert at_named.starts and not beyond.starts


def test_every_pipeline_stage_must_hold_its_weights():
    model = load_model("llama-3.1-405b")
    estimate = check_layout(
        model, ServingSettings(max_model_len=32768), gpu="H100-80GB", tensor_parallel_size=8, pipeline_parallel_size=2
    )
    assert estimate.starts
    # each stage holds half the layers (+ embedding or LM head): well under one GPU's budget
    assert estimate.weights_gib_per_gpu < 0.9 * 79.18 / 1.5


def test_mla_blocks_follow_the_backend_vllm_picks():
    """vLLM 0.26 ran DeepSeek-V2-Lite on Hopper with FLASH_ATTN_MLA (16-token blocks, bf16 KV only);
    an fp8 KV cache there needs FlashMLA's 64-token pages; Ampere runs TRITON_MLA with 16."""
    model, settings = load_model("deepseek-v2-lite"), ServingSettings(max_model_len=8192)
    for gpu, kv_dtype, block in (("H100-80GB", "auto", 16), ("H100-80GB", "fp8", 64), ("A100-80GB", "auto", 16)):
        e = check_layout(model, replace(settings, kv_cache_dtype=kv_dtype), gpu=gpu, tensor_parallel_size=1)
        assert e.kv_cache_tokens % block == 0
        assert e.kv_cache_tokens // block == int(
            e.kv_cache_gib_per_gpu * 2**30 // (block * e.kv_cache_bytes_per_token_per_gpu)
        )


def test_a_larger_gpu_of_the_same_count_is_the_next_size_up_when_allowed():
    model = load_model("llama-3.1-70b")
    length = _marginal_tp2_context(model)
    plan = plan_model(model, ServingSettings(max_model_len=length), gpus=["H100-80GB", "H200-141GB"])
    assert (plan.gpu, plan.tensor_parallel_size) == ("H200-141GB", 2) and not plan.marginal
    assert any("H100-80GB TP=2" in note and "marginal" in note for note in plan.notes)


def test_fewer_batched_tokens_than_sequences_is_refused_as_vllm_does():
    settings = ServingSettings(max_model_len=4096, max_num_seqs=1024, max_num_batched_tokens=512)
    estimate = check_layout(load_model("llama-3.1-8b"), settings, gpu="H100-80GB", tensor_parallel_size=1)
    assert not estimate.valid
    assert estimate.reason == "max_num_batched_tokens (512) must be greater than or equal to max_num_seqs (1024)."
