"""KV cache groups, blocks and reported tokens as vLLM's KV cache manager forms them."""

from sizing.architecture import FULL_ATTENTION, SLIDING_WINDOW, ModelArchitecture
from sizing.gpus import GPUS
from sizing.kv_cache import kv_cache_layout
from sizing.memory import estimate_memory
from sizing.models import load_model
from sizing.settings import ServingSettings

GIB = 2**30


def _gemma3_like(layers: int = 12) -> dict:
    """Gemma-3's published pattern: five sliding-window layers, then one global layer."""
    return dict(
        architectures=["Gemma3ForCausalLM"],
        model_type="gemma3_text",
        hidden_size=2560,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        intermediate_size=10240,
        vocab_size=262208,
        max_position_embeddings=131072,
        sliding_window=1024,
        layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)],
    )


def test_layer_types_give_each_layer_its_own_attention_kind():
    model = ModelArchitecture.from_config(_gemma3_like(), name="gemma3-like")
    kinds = [layer.attention for layer in model.layers]
    assert kinds[:6] == [SLIDING_WINDOW] * 5 + [FULL_ATTENTION]
    assert all(layer.sliding_window == 1024 for layer in model.layers if layer.attention == SLIDING_WINDOW)


def test_one_kind_of_layer_is_one_group_and_blocks_times_block_size():
    model = load_model("llama-3.1-8b")
    layout = kv_cache_layout(model, range(model.num_layers), 1, 2, 16)
    assert layout.groups == ((None, 32),) and layout.group_size == 32
    available = 10 * GIB
    blocks = available // (16 * 131072)  # 2 x 8 heads x 128 x 2 bytes x 32 layers per token
    assert layout.num_blocks(available) == blocks
    assert layout.tokens(available, 8192, 8192) == blocks * 16
    assert layout.max_concurrency(available, 8192, 8192) == blocks / 512


def test_gemma2_interleaved_layers_form_two_groups_sharing_one_pool():
    """23 sliding + 23 full layers: group size 23; a request takes its full context in the full
    group and only window + one batch (+1 block) in the sliding group."""
    model = load_model("gemma-2-27b")
    layout = kv_cache_layout(model, range(model.num_layers), 1, 2, 16)
    assert sorted(layout.groups, key=str) == sorted(((4096, 23), (None, 23)), key=str)
    page = 16 * 2 * 16 * 128 * 2
    available = 20 * GIB
    blocks = available // page // 23
    assert layout.num_blocks(available) == blocks
    per_request = 8192 // 16 + (min(4095 + 2048, 8192) + 15) // 16 + 1
    assert layout.blocks_per_request(8192, 2048) == per_request
    assert layout.max_concurrency(available, 8192, 2048) == blocks / per_request
    assert layout.tokens(available, 8192, 2048) == int(blocks / per_request * 8192)


def test_uneven_kinds_split_into_groups_of_the_fewest_layers():
    """Gemma-3 at 12 layers: 10 sliding, 2 full -> group size 2, five sliding groups, one full."""
    model = ModelArchitecture.from_config(_gemma3_like(), name="gemma3-like")
    layout = kv_cache_layout(model, range(model.num_layers), 1, 2, 16)
    assert layout.group_size == 2
    assert sorted(w or 0 for w, _ in layout.groups) == [0] + [1024] * 5
    assert all(count == 2 for _, count in layout.groups)


def test_hybrid_plan_reports_tokens_as_concurrency_times_context():
    model = load_model("gemma-2-27b")
    settings = ServingSettings(max_model_len=8192, max_num_batched_tokens=8192, max_num_seqs=256)
    estimate = estimate_memory(model, GPUS["H100-80GB"], 2, 1, settings)
    assert estimate.starts
    assert estimate.kv_cache_tokens == int(estimate.max_concurrency * 8192)
