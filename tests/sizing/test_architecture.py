import pytest

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.models import load_model, model_names


@pytest.mark.parametrize("name", model_names())
def test_parameter_count_equals_the_published_exact_count(name):
    """Weights follow from the architecture; the count proves every matrix is accounted for."""
    model = load_model(name)
    assert model.published_parameters, "catalog configs carry their exact published count"
    assert model.parameters == model.published_parameters


def test_explicit_head_dim_wins_over_hidden_over_heads():
    gemma = load_model("gemma-2-27b")
    assert gemma.hidden_size // gemma.num_attention_heads == 144
    assert gemma.head_dim == 128


def test_gemma2_alternates_sliding_and_global_layers():
    gemma = load_model("gemma-2-27b")
    assert gemma.sliding_layers[:4] == (True, False, True, False)
    assert sum(gemma.sliding_layers) == 23 and gemma.sliding_window == 4096


def test_qwen_sliding_window_is_off_unless_enabled():
    assert load_model("qwen2.5-7b").sliding_window is None


def test_float32_checkpoint_and_tied_embeddings_are_read():
    gemma = load_model("gemma-2-27b")
    assert gemma.checkpoint_dtype == "float32" and gemma.tie_word_embeddings


def test_mla_and_moe_are_recognised():
    deepseek = load_model("deepseek-v2-lite")
    assert deepseek.mla is not None and deepseek.mla.kv_lora_rank == 512
    assert deepseek.moe is not None and deepseek.moe.num_experts == 64
    assert not deepseek.is_moe_layer(0) and deepseek.is_moe_layer(1)


def test_missing_field_is_named():
    with pytest.raises(SizingError, match="num_hidden_layers"):
        ModelArchitecture.from_config(
            {
                "architectures": ["LlamaForCausalLM"],
                "hidden_size": 8,
                "num_attention_heads": 1,
                "vocab_size": 8,
                "intermediate_size": 8,
                "max_position_embeddings": 8,
            },
            name="tiny",
        )


def test_config_directory_and_file_load(tmp_path):
    import json

    config = json.loads((load_model.__globals__["CONFIG_DIR"] / "Llama-2-7B.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert load_model(str(tmp_path)).parameters == load_model("llama-2-7b").parameters
    assert load_model(str(tmp_path / "config.json")).num_layers == 32


def test_unknown_model_names_the_catalog():
    with pytest.raises(SizingError, match="llama-3.1-70b"):
        load_model("llama-4-9000b")


def test_qwen_moe_inline_config_counts_shared_expert_and_its_gate():
    """Qwen1.5-MoE-A2.7B's config.json fields; its safetensors hold 14,315,784,192 parameters."""
    config = dict(
        architectures=["Qwen2MoeForCausalLM"],
        model_type="qwen2_moe",
        hidden_size=2048,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=16,
        intermediate_size=5632,
        moe_intermediate_size=1408,
        shared_expert_intermediate_size=5632,
        num_experts=60,
        num_experts_per_tok=4,
        vocab_size=151936,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
        decoder_sparse_step=1,
    )
    model = ModelArchitecture.from_config(config, name="qwen1.5-moe-a2.7b")
    assert model.moe is not None and model.moe.shared_expert_gate and model.qkv_bias
    assert model.parameters == 14_315_784_192
