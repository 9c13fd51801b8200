"""The checkpoint's own quantization: read from config.json, sized per scheme, never contradicted."""

import copy
import json
from pathlib import Path

import pytest

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.models import load_model
from sizing.planner import check_layout, plan_model
from sizing.quantization import resolve_weight_format
from sizing.settings import ServingSettings
from sizing.weights import padded_vocab, weights_bytes_per_gpu

GIB = 2**30
FP8_RECORDS = {
    r["case"]: r["architecture"]
    for r in json.loads((Path(__file__).parent / "calibration" / "vllm-0.26-h200-fp8.json").read_text())
}
STATIC = FP8_RECORDS["x1_llama3.1-8b-fp8_tp1"]
DYNAMIC = FP8_RECORDS["x2_llama3.1-8b-fp8-dynamic_tp1"]


def _with_quantization(config: dict, quantization: dict | None) -> ModelArchitecture:
    config = copy.deepcopy(config)
    config.pop("quantization_config", None)
    if quantization is not None:
        config["quantization_config"] = quantization
    return ModelArchitecture.from_config(config, name="llama-3.1-8b-variant")


def _weights(model: ModelArchitecture) -> int:
    return weights_bytes_per_gpu(model, 1, range(model.num_layers), True, True, model.quantization, 2)


def test_both_fp8_forms_are_recognised_as_vllm_logs_them():
    static, dynamic = (ModelArchitecture.from_config(c, name="m") for c in (STATIC, DYNAMIC))
    assert static.quantization.method == "fp8" and "static" in static.quantization.scheme
    assert dynamic.quantization.method == "compressed-tensors"
    assert dynamic.quantization.scheme.startswith("W8A8-FP8 per-channel")
    assert dynamic.quantization.ignore == ("lm_head",)


def test_fp8_checkpoint_is_sized_at_one_byte_per_linear_weight_without_being_asked():
    bf16, fp8 = _with_quantization(DYNAMIC, None), ModelArchitecture.from_config(DYNAMIC, name="m")
    embeddings = 2 * padded_vocab(bf16.vocab_size) * bf16.hidden_size * 2
    assert 0.5 <= (_weights(fp8) - embeddings) / (_weights(bf16) - embeddings) < 0.51  # + per-channel scales
    estimate = check_layout(fp8, ServingSettings(max_model_len=8192), gpu="H100-80GB", tensor_parallel_size=1)
    assert estimate.weights_gib_per_gpu < 9 and estimate.weight_format.startswith("compressed-tensors ")


def test_the_70b_fp8_catalog_entry_fits_one_h200_where_bf16_needs_two():
    """Issue 10's finding: vLLM started a Llama-3.1-70B FP8 checkpoint on one H200 with room to spare."""
    settings = ServingSettings(max_model_len=8192)
    assert plan_model(load_model("llama-3.1-70b-fp8"), settings, gpus=["H200-141GB"]).gpus == 1
    assert plan_model(load_model("llama-3.1-70b"), settings, gpus=["H200-141GB"]).gpus == 2


def test_catalog_fp8_entries_name_their_public_repo():
    for name in ("llama-3.1-70b-fp8", "llama-3.1-405b-fp8"):
        model = load_model(name)
        assert model.hf_repo_id and "FP8" in model.hf_repo_id and model.quantization is not None


def test_ignored_modules_stay_at_their_dtype():
    ignore_down = copy.deepcopy(DYNAMIC["quantization_config"])
    ignore_down["ignore"] = ["lm_head", "re:.*down_proj"]
    everything = _weights(ModelArchitecture.from_config(DYNAMIC, name="m"))
    partly = _weights(_with_quantization(DYNAMIC, ignore_down))
    down_proj = 32 * 4096 * 14336  # elements over the 32 layers: bf16 keeps 2 bytes where fp8 had 1
    assert partly - everything == pytest.approx(down_proj, rel=0.01)


def test_a_contradicting_quantization_is_refused_naming_both():
    fp8 = ModelArchitecture.from_config(DYNAMIC, name="llama-fp8")
    with pytest.raises(SizingError, match=r"'awq'.*compressed-tensors"):
        check_layout(
            fp8, ServingSettings(max_model_len=4096, quantization="awq"), gpu="H100-80GB", tensor_parallel_size=1
        )
    bf16 = load_model("llama-3.1-8b")
    with pytest.raises(SizingError, match=r"'compressed-tensors'.*unquantized"):
        resolve_weight_format(bf16.quantization, "compressed-tensors", bf16.name)


def test_quantizations_vllm_applies_at_load_are_accepted_on_bf16():
    bf16 = load_model("llama-3.1-8b")
    assert resolve_weight_format(bf16.quantization, "fp8", bf16.name).bytes_per_element == 1.0
    assert resolve_weight_format(bf16.quantization, "bitsandbytes", bf16.name).weight_bits == 4
    assert resolve_weight_format(bf16.quantization, "none", bf16.name) is None


def test_same_method_or_its_marlin_variant_is_no_contradiction():
    awq = _with_quantization(DYNAMIC, {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True})
    assert resolve_weight_format(awq.quantization, "awq_marlin", awq.name) is awq.quantization
    assert resolve_weight_format(awq.quantization, "none", awq.name) is awq.quantization


@pytest.mark.parametrize(
    "quantization, low, high",
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}, 0.25, 0.27),
        ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False}, 0.25, 0.27),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, 0.28, 0.29),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {
                    "group_0": {
                        "targets": ["Linear"],
                        "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128},
                    }
                },
                "ignore": ["lm_head"],
            },
            0.25,
            0.26,
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {
                        "targets": ["Linear"],
                        "weights": {"num_bits": 8, "type": "int", "strategy": "channel"},
                        "input_activations": {"num_bits": 8, "type": "int", "strategy": "token", "dynamic": True},
                    }
                },
            },
            0.50,
            0.51,
        ),
    ],
    ids=["awq", "gptq", "bnb-nf4", "w4a16", "int8-w8a8"],
)
def test_each_scheme_sizes_linear_weights_with_its_scales(quantization, low, high):
    """4 bits = a quarter of bf16, plus fp16 scales (and packed zeros) per 128 inputs; NF4 adds an
    fp32 absmax per 64; W8A8 one byte plus an fp32 scale per output channel."""
    bf16 = _with_quantization(DYNAMIC, None)
    quantized = _with_quantization(DYNAMIC, quantization)
    embeddings = 2 * padded_vocab(bf16.vocab_size) * bf16.hidden_size * 2
    ratio = (_weights(quantized) - embeddings) / (_weights(bf16) - embeddings)
    assert low <= ratio < high


def test_unknown_quant_method_is_refused_with_the_supported_ones():
    with pytest.raises(
        SizingError, match=r"quant_method 'hqq'.*fp8, compressed-tensors, awq, gptq, bitsandbytes, fbgemm_fp8"
    ):
        _with_quantization(DYNAMIC, {"quant_method": "hqq"})


def test_four_bit_checkpoints_get_marlins_shape_rules_without_being_asked():
    """Llama-2-7B's 11008 intermediate at TP=8 leaves 1376 inputs per rank: not a multiple of 128."""
    config = json.loads((Path(load_model.__globals__["CONFIG_DIR"]) / "Llama-2-7B.json").read_text())
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128}
    awq = ModelArchitecture.from_config(config, name="llama-2-7b-awq")
    settings = ServingSettings(max_model_len=4096)
    estimate = check_layout(awq, settings, gpu="H100-80GB", tensor_parallel_size=8)
    assert estimate.valid is False and "min_thread_k" in estimate.reason
    assert check_layout(load_model("llama-2-7b"), settings, gpu="H100-80GB", tensor_parallel_size=8).valid


def test_the_stack_can_check_a_requested_quantization_against_the_catalog_model():
    from sizing import QUANTIZATIONS, check_quantization

    fp8 = load_model("llama-3.1-70b-fp8")
    assert check_quantization(fp8.quantization, "none", fp8.name) == "compressed-tensors"
    assert check_quantization(None, "fp8", "llama-3.1-70b") == "fp8"
    assert {"none", "fp8", "awq", "gptq", "compressed-tensors", "bitsandbytes", "fbgemm_fp8"} == set(QUANTIZATIONS)
    with pytest.raises(SizingError, match=r"'gptq'.*'compressed-tensors'"):
        check_quantization(fp8.quantization, "gptq", fp8.name)


def test_awq_of_an_unquantized_checkpoint_is_refused_where_the_checkpoint_is_the_one_loaded():
    """The planner may size "an AWQ checkpoint of this architecture"; the stack, which downloads
    the catalog's bf16 repo, must refuse it as vLLM would at start."""
    from sizing import check_quantization

    bf16 = load_model("llama-3.1-8b")
    assert resolve_weight_format(bf16.quantization, "awq", bf16.name).method == "awq"
    with pytest.raises(
        SizingError, match=r"quantization 'awq' contradicts the checkpoint of llama-3.1-8b.*unquantized"
    ):
        check_quantization(bf16.quantization, "awq", bf16.name)


def test_metas_fbgemm_fp8_keeps_the_listed_modules_in_bf16():
    """Meta's FP8 releases leave the attention projections they list in bf16."""
    listed = [f"model.layers.{i}.self_attn.{m}" for i in range(32) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
    fbgemm = {
        "quant_method": "fbgemm_fp8",
        "activation_scale_ub": 1200.0,
        "modules_to_not_convert": listed + ["lm_head"],
    }
    model = _with_quantization(DYNAMIC, fbgemm)
    everything = _with_quantization(DYNAMIC, {**fbgemm, "modules_to_not_convert": ["lm_head"]})
    attention = 32 * 4096 * (4096 + 2 * 1024 + 4096)  # qkv and o elements: bf16 keeps 2 bytes where fp8 had 1
    assert _weights(model) - _weights(everything) == pytest.approx(attention, rel=0.01)
    assert model.quantization.method == "fbgemm_fp8"
