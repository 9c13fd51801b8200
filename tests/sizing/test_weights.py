"""Weight bytes per GPU: the allocator's padding, vocabulary padding, stages, quantization."""

from sizing.models import load_model
from sizing.weights import MIB, allocated_bytes, padded_vocab, weights_bytes_per_gpu

GIB = 2**30


def test_allocator_pads_large_tensors_to_2_mib_only_when_the_rest_would_be_under_1_mib():
    assert allocated_bytes(135 * MIB) == 136 * MIB  # Llama-2-13B down_proj: +1 MiB per layer
    assert allocated_bytes(134.5 * MIB) == 134.5 * MIB  # 1.5 MiB left over: the block is split
    assert allocated_bytes(5 * MIB + 1) == 5 * MIB + 512  # below 10 MiB: 512-byte granularity


def test_vocabulary_is_padded_to_a_multiple_of_64():
    assert padded_vocab(32000) == 32000
    assert padded_vocab(32001) == 32064
    assert padded_vocab(151936) == 151936


def test_tied_embeddings_cost_one_matrix_unless_split_across_pipeline_stages():
    gemma = load_model("gemma-2-27b")
    embedding = padded_vocab(gemma.vocab_size) * gemma.hidden_size * 2
    whole = weights_bytes_per_gpu(gemma, 1, range(gemma.num_layers), True, True, "none", 2)
    first = weights_bytes_per_gpu(gemma, 1, range(0, 23), True, False, "none", 2)
    last = weights_bytes_per_gpu(gemma, 1, range(23, 46), False, True, "none", 2)
    assert first + last - whole >= embedding  # the last stage holds its own LM head


def test_fp8_and_awq_shrink_linear_layers_but_not_embeddings():
    model = load_model("llama-3.1-8b")
    layers = range(model.num_layers)
    bf16 = weights_bytes_per_gpu(model, 1, layers, True, True, "none", 2)
    fp8 = weights_bytes_per_gpu(model, 1, layers, True, True, "fp8", 2)
    awq = weights_bytes_per_gpu(model, 1, layers, True, True, "awq", 2)
    embeddings = 2 * padded_vocab(model.vocab_size) * model.hidden_size * 2
    assert (fp8 - embeddings) / (bf16 - embeddings) < 0.51
    assert 0.25 < (awq - embeddings) / (bf16 - embeddings) < 0.27  # 4 bits plus scales and zeros
    assert fp8 > embeddings and awq > embeddings


def test_405b_stage_weights_split_evenly_and_fit_80gb_at_pp2():
    model = load_model("llama-3.1-405b")
    first = weights_bytes_per_gpu(model, 8, range(0, 63), True, False, "none", 2) / GIB
    last = weights_bytes_per_gpu(model, 8, range(63, 126), False, True, "none", 2) / GIB
    assert abs(first - last) < 0.1 and first < 0.9 * 79.18 - 10
