"""The config.json boundary: every field typed and range-checked, bad input named, never a traceback."""

import copy
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.gpus import GPUS
from sizing.memory import estimate_memory
from sizing.models import CONFIG_DIR
from sizing.planner import plan_model
from sizing.settings import ServingSettings

BASES = {
    name: json.loads((CONFIG_DIR / f"{name}.json").read_text())
    for name in ("Llama-3.1-8B", "Gemma-2-27B", "DeepSeek-V2-Lite", "Mixtral-8x7B", "Qwen2.5-7B", "Llama-3.1-70B-FP8")
}
FP8_STATIC = json.loads((Path(__file__).parent / "calibration" / "vllm-0.26-h200-fp8.json").read_text())[0]
BASES["fp8-static"] = FP8_STATIC["architecture"]
LLAMA = BASES["Llama-3.1-8B"]

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=70000),
    st.integers(min_value=2**31, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(-2, 5), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-2, 5), max_size=2),
)
FIELDS = sorted(
    {key for base in BASES.values() for key in base}
    | {"head_dim", "num_key_value_heads", "layer_types", "use_sliding_window", "max_window_layers", "dtype"}
)
QUANT_FIELDS = ["quant_method", "activation_scheme", "ignore", "config_groups", "bits", "group_size", "desc_act"]


@st.composite
def malformed_configs(draw):
    config = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(FIELDS + [f"quantization_config.{k}" for k in QUANT_FIELDS]))
        target = config
        if key.startswith("quantization_config."):
            if not isinstance(config.get("quantization_config"), dict):
                config["quantization_config"] = {"quant_method": "fp8"}
            target, key = config["quantization_config"], key.split(".", 1)[1]
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUES)
    return config


def _size(config) -> None:
    model = ModelArchitecture.from_config(config, name="fuzzed")
    settings = ServingSettings(max_model_len=min(4096, model.max_position_embeddings))
    estimate_memory(model, GPUS["H100-80GB"], 1, 1, settings)
    try:
        plan_model(model, settings, gpus=["H100-80GB"], explain=False)
    except SizingError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_configs())
def test_malformed_configs_end_in_a_sizing_error_or_a_plan(config):
    start = time.perf_counter()
    try:
        _size(config)
    except SizingError as error:
        assert "config.json" in str(error) or "quantization" in str(error) or "fits none" in str(error)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "change, words",
    [
        ({"num_attention_heads": 0}, ["num_attention_heads = 0", "from 1 to"]),
        ({"num_key_value_heads": 0}, ["num_key_value_heads = 0"]),
        ({"num_hidden_layers": "32"}, ["num_hidden_layers = '32'", "whole number"]),
        ({"hidden_size": [4096]}, ["hidden_size = [4096]"]),
        ({"num_key_value_heads": 7}, ["num_key_value_heads = 7", "multiple"]),
        ({"hidden_size": 4100}, ["hidden_size = 4100", "divisible by num_attention_heads (32)"]),
        ({"vocab_size": float("nan")}, ["vocab_size = nan"]),
        ({"tie_word_embeddings": "yes"}, ["tie_word_embeddings = 'yes'", "true or false"]),
        ({"torch_dtype": "int4"}, ["torch_dtype = 'int4'", "bfloat16"]),
        ({"layer_types": ["full_attention"] * 3}, ["layer_types", "one type per layer (32)"]),
        ({"sliding_window": -1}, ["sliding_window = -1"]),
        ({"quantization_config": {"quant_method": "fp8", "ignored_layers": "lm_head"}}, ["ignored_layers", "list"]),
        ({"quantization_config": {"quant_method": "compressed-tensors"}}, ["config_groups"]),
    ],
)
def test_each_bad_field_is_named_with_its_value_and_rule(change, words):
    config = {**copy.deepcopy(LLAMA), **change}
    with pytest.raises(SizingError) as caught:
        ModelArchitecture.from_config(config, name="Llama-broken/config.json")
    message = str(caught.value)
    assert message.startswith("config.json of Llama-broken/config.json")
    for word in words:
        assert word in message


def test_absurd_sizes_are_refused_in_milliseconds():
    for change in ({"num_hidden_layers": 10**9}, {"hidden_size": 10**12}, {"vocab_size": 10**10}):
        start = time.perf_counter()
        with pytest.raises(SizingError, match="from 1 to"):
            ModelArchitecture.from_config({**LLAMA, **change}, name="absurd")
        assert time.perf_counter() - start < 0.01


def test_numbers_pulumi_passes_as_floats_are_accepted():
    """Pulumi config hands numbers over as floats (protobuf Struct): 4096.0 is a whole number."""
    as_floats = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in LLAMA.items()}
    assert ModelArchitecture.from_config(as_floats, name="floats").hidden_size == 4096


def test_unknown_architecture_is_refused_with_the_families_and_how_to_map_it():
    falcon = {**LLAMA, "architectures": ["FalconForCausalLM"], "model_type": "falcon"}
    with pytest.raises(SizingError) as caught:
        ModelArchitecture.from_config(falcon, name="acme/falcon")
    message = str(caught.value)
    assert "FalconForCausalLM is not a family the sizing models" in message
    assert "LlamaForCausalLM" in message and "MixtralForCausalLM" in message
    assert '"_sizing_architecture": "LlamaForCausalLM"' in message
    mapped = ModelArchitecture.from_config({**falcon, "_sizing_architecture": "LlamaForCausalLM"}, name="acme/falcon")
    assert mapped.architecture == "FalconForCausalLM" and not mapped.supports_pipeline_parallel
    with pytest.raises(SizingError, match="_sizing_architecture = 'GPT2'"):
        ModelArchitecture.from_config({**falcon, "_sizing_architecture": "GPT2"}, name="acme/falcon")
