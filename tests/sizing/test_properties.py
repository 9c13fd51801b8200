"""Properties every plan must have, over the catalog, the GPUs and a range of contexts."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sizing.errors import NoFitError
from sizing.gpus import GPUS
from sizing.models import load_model, model_names
from sizing.planner import check_layout, plan_model
from sizing.rules import parallel_layout_error
from sizing.settings import ServingSettings

GPUS_BY_MEMORY = sorted(GPUS.values(), key=lambda g: g.torch_total_memory_gib)
models = st.sampled_from(model_names())
lengths = st.integers(min_value=1, max_value=64).map(lambda k: k * 2048)
batched = st.sampled_from([2048, 8192, 16384])
concurrency = st.sampled_from([1, 4, 16])
common = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _settings(model, length, tokens):
    return ServingSettings(
        max_model_len=min(length, model.max_position_embeddings),
        max_num_batched_tokens=tokens,
        max_num_seqs=256,
    )


def _plan(model, serving, gpu, min_concurrency=1):
    try:
        return plan_model(model, serving, gpus=[gpu], min_concurrency=min_concurrency)
    except NoFitError:
        return None


@common
@given(models, lengths, batched, st.sampled_from(list(GPUS)))
def test_every_planned_tp_is_valid_for_its_model(name, length, tokens, gpu):
    model = load_model(name)
    plan = _plan(model, _settings(model, length, tokens), gpu)
    if plan is None:
        return
    assert model.num_attention_heads % plan.tensor_parallel_size == 0
    assert (
        parallel_layout_error(model, plan.tensor_parallel_size, plan.pipeline_parallel_size, 8, plan.settings) is None
    )


@common
@given(models, lengths, batched, concurrency, st.integers(0, len(GPUS_BY_MEMORY) - 2))
def test_a_larger_gpu_never_needs_more_gpus(name, length, tokens, min_concurrency, index):
    model = load_model(name)
    serving = _settings(model, length, tokens)
    small, large = GPUS_BY_MEMORY[index], GPUS_BY_MEMORY[index + 1]
    on_small = _plan(model, serving, small.name, min_concurrency)
    on_large = _plan(model, serving, large.name, min_concurrency)
    if on_small is None:
        return
    assert on_large is not None, f"fits {small.name} but not the larger {large.name}"
    assert on_large.gpus <= on_small.gpus


@common
@given(models, lengths, lengths, batched, concurrency, st.sampled_from(list(GPUS)))
def test_a_longer_context_never_needs_fewer_gpus(name, a, b, tokens, min_concurrency, gpu):
    model = load_model(name)
    short, long = sorted((a, b))
    on_short = _plan(model, _settings(model, short, tokens), gpu, min_concurrency)
    on_long = _plan(model, _settings(model, long, tokens), gpu, min_concurrency)
    if on_long is None:
        return
    assert on_short is not None, "a context that fits longer must fit shorter"
    assert on_long.gpus >= on_short.gpus


@common
@given(models, lengths, batched, st.sampled_from(list(GPUS)))
def test_plan_and_check_agree(name, length, tokens, gpu):
    model = load_model(name)
    serving = _settings(model, length, tokens)
    plan = _plan(model, serving, gpu)
    if plan is None:
        for tp in (1, 2, 4, 8):
            estimate = check_layout(model, serving, gpu=gpu, tensor_parallel_size=tp)
            assert not (estimate.valid and estimate.starts), f"plan found nothing but TP={tp} starts"
        return
    estimate = check_layout(
        model,
        serving,
        gpu=gpu,
        tensor_parallel_size=plan.tensor_parallel_size,
        pipeline_parallel_size=plan.pipeline_parallel_size,
    )
    assert estimate.valid and estimate.starts
    assert estimate == plan.estimate
