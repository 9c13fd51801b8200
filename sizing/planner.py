"""Choose the cheapest (GPU, TP, PP) that starts a model with the requested context.

Order: fewest GPUs, then the cheapest GPU-hours, then the smaller TP. A layout whose KV cache is
predicted to be barely above what the requested concurrency needs is *marginal*: the accounting
is calibrated on one vLLM release and the deployed image runs another, so when the smallest
layout that fits is marginal the planner takes the next size up that fits (a larger GPU for the
same count where one is allowed, else more GPUs) and says so in the plan's notes; it returns a
marginal plan only when nothing larger fits. Deciding on
the smallest fitting layout first keeps the choice monotonic: a longer context or a smaller GPU
never yields fewer GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from sizing.accounting import VLLM_0_26, VLLM_0_32, Accounting
from sizing.architecture import ModelArchitecture
from sizing.errors import NoFitError, SizingError
from sizing.estimate import MemoryEstimate
from sizing.gpus import GPUS, resolve_gpu
from sizing.instances import INSTANCES, InstanceType, cheapest_instance_for, resolve_instance_type
from sizing.memory import GIB, activation_bytes, checkpoint_weight_format, estimate_memory
from sizing.plan import Plan
from sizing.search import largest_where
from sizing.settings import ServingSettings
from sizing.weights import weights_bytes_per_gpu

TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)
MAX_PIPELINE_PARALLEL_SIZE = 8
MARGINAL_HEADROOM_GIB = 1.0
MARGINAL_HEADROOM_FRACTION = 0.10


@dataclass(frozen=True)
class Attempt:
    instance_type: str
    gpu: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    reason: str

    def describe(self) -> str:
        return f"{self.gpu} TP={self.tensor_parallel_size} PP={self.pipeline_parallel_size}: {self.reason}"


def instance_types_for(
    gpus: Iterable[str] | None = None, instance_types: Iterable[str] | None = None
) -> list[InstanceType]:
    """The instances a plan may use: named ones, or the cheapest instance of each named GPU."""
    chosen: dict[str, InstanceType] = {}
    for name in instance_types or ():
        it = resolve_instance_type(name)
        chosen[it.name] = it
    for name in gpus or ():
        it = cheapest_instance_for(resolve_gpu(name).name)
        chosen.setdefault(it.name, it)
    if not chosen:
        raise SizingError("no GPU or instance type to plan on: name at least one of " + ", ".join(GPUS))
    return list(chosen.values())


def check_layout(
    model: ModelArchitecture,
    settings: ServingSettings,
    *,
    gpu: str,
    tensor_parallel_size: int,
    pipeline_parallel_size: int = 1,
    accounting: Accounting = VLLM_0_26,
) -> MemoryEstimate:
    it = cheapest_instance_for(resolve_gpu(gpu).name)
    return estimate_memory(
        model, it.gpu, tensor_parallel_size, pipeline_parallel_size, settings, it.gpus_per_node, accounting
    )


def plan_model(
    model: ModelArchitecture,
    settings: ServingSettings,
    *,
    instance_types: Sequence[str] | None = None,
    gpus: Sequence[str] | None = None,
    min_concurrency: float = 1.0,
    tensor_parallel_size: int | None = None,
    pipeline_parallel_size: int | None = None,
    explain: bool = True,
    accounting: Accounting = VLLM_0_26,
) -> Plan:
    """``explain=False`` skips the suggestions on failure (they are themselves plans). ``accounting``
    is the deployed vLLM release's (``sizing.accounting``); the default is the measured one."""
    candidates = instance_types_for(gpus, instance_types)
    attempts: list[Attempt] = []
    smallest: Plan | None = None
    for plan in _tried(
        model, settings, candidates, min_concurrency, tensor_parallel_size, pipeline_parallel_size, accounting, attempts
    ):
        if smallest is None:
            if not plan.marginal:
                return plan
            smallest = plan
            continue
        if plan.marginal and plan.gpus == smallest.gpus:
            continue  # another instance of the same size, no safer: look further
        note = (
            f"{smallest.gpu} TP={smallest.tensor_parallel_size} PP={smallest.pipeline_parallel_size} "
            f"({smallest.gpus} GPUs) fits only marginally ({_headroom(smallest.estimate, min_concurrency)}"
            + "".join(f"; {n}" for n in smallest.notes)
            + "); took the next size up"
        )
        return replace(plan, notes=plan.notes + (note,))
    if smallest is not None:
        return replace(smallest, notes=smallest.notes + ("no larger layout fits",))
    if not explain:
        raise NoFitError(f"{model.name} fits none of the layouts tried", tuple(attempts))
    raise _no_fit(
        model, settings, candidates, attempts, min_concurrency, tensor_parallel_size, pipeline_parallel_size, accounting
    )


def fitting_plans(
    model: ModelArchitecture,
    settings: ServingSettings,
    *,
    instance_types: Sequence[str] | None = None,
    gpus: Sequence[str] | None = None,
    min_concurrency: float = 1.0,
    tensor_parallel_size: int | None = None,
    pipeline_parallel_size: int | None = None,
    accounting: Accounting = VLLM_0_26,
) -> tuple[list[Plan], list[Attempt]]:
    """Every layout that starts the model with ``min_concurrency`` requests (in ``plan_model``'s
    order), and why each other one does not: the candidates a choice on more than memory (the
    traffic planner's cost per request) weighs, where ``plan_model`` stops at the first. When none
    starts, raises ``plan_model``'s ``NoFitError`` (every layout tried, and what would fit)."""
    candidates = instance_types_for(gpus, instance_types)
    attempts: list[Attempt] = []
    plans = list(
        _tried(
            model,
            settings,
            candidates,
            min_concurrency,
            tensor_parallel_size,
            pipeline_parallel_size,
            accounting,
            attempts,
        )
    )
    if not plans:
        raise _no_fit(
            model,
            settings,
            candidates,
            attempts,
            min_concurrency,
            tensor_parallel_size,
            pipeline_parallel_size,
            accounting,
        )
    return plans, attempts


def _tried(
    model, settings, candidates, min_concurrency, tensor_parallel_size, pipeline_parallel_size, accounting, attempts
) -> Iterator[Plan]:
    """The plans of the layouts that start, in order; each one that does not goes into ``attempts``."""
    if not 0 < min_concurrency < float("inf"):  # nan fails too
        raise SizingError(f"min_concurrency {min_concurrency!r} is invalid: give a finite number of requests > 0")
    for it, tp, pp in _layouts(candidates, tensor_parallel_size, pipeline_parallel_size, model):
        estimate = estimate_memory(model, it.gpu, tp, pp, settings, it.gpus_per_node, accounting)
        failure = _failure(estimate, min_concurrency)
        if failure:
            attempts.append(Attempt(it.name, it.gpu.name, tp, pp, failure))
        else:
            yield _plan(model, it, tp, pp, estimate, min_concurrency, accounting)


def _layouts(candidates, tensor_parallel_size, pipeline_parallel_size, model):
    """Every layout to try, cheapest first. PP > 1 spans whole nodes: TP fills a node."""
    layouts = []
    for it in candidates:
        tps = (
            [tensor_parallel_size]
            if tensor_parallel_size
            else [t for t in TENSOR_PARALLEL_SIZES if t <= it.gpus_per_node]
        )
        for tp in tps:
            if pipeline_parallel_size:
                pps = [pipeline_parallel_size]
            elif tp == it.gpus_per_node and model.supports_pipeline_parallel:
                pps = range(1, MAX_PIPELINE_PARALLEL_SIZE + 1)
            else:
                pps = [1]
            for pp in pps:
                gpus = tp * pp
                layouts.append((gpus, gpus * it.usd_per_gpu_hour, tp, it.name, it, pp))
    layouts.sort(key=lambda row: row[:4])
    return [(it, tp, pp) for _, _, tp, _, it, pp in layouts]


def _failure(estimate: MemoryEstimate, min_concurrency: float) -> str | None:
    if not estimate.valid or not estimate.starts:
        return estimate.reason
    if estimate.max_concurrency < min_concurrency:
        return (
            f"starts, but its KV cache holds {estimate.max_concurrency:.2f} requests at "
            f"max_model_len={estimate.settings.max_model_len}, fewer than min_concurrency={min_concurrency:g}"
        )
    return None


def _headroom(estimate: MemoryEstimate, min_concurrency: float) -> str:
    needed = estimate.kv_cache_gib_needed_per_request * min_concurrency
    margin = f" after a {estimate.kv_margin_gib_per_gpu:.2f} GiB margin" if estimate.kv_margin_gib_per_gpu else ""
    return f"KV cache {estimate.promised_kv_cache_gib_per_gpu:.2f} GiB per GPU{margin} for {needed:.2f} GiB needed"


def is_marginal(estimate: MemoryEstimate, min_concurrency: float = 1.0) -> bool:
    """Thin headroom over what the requested concurrency needs, counted on the KV cache the plan
    may promise: an extrapolated prediction's margin is off it first."""
    needed = estimate.kv_cache_gib_needed_per_request * min_concurrency
    headroom = estimate.promised_kv_cache_gib_per_gpu - needed
    return headroom < max(MARGINAL_HEADROOM_GIB, MARGINAL_HEADROOM_FRACTION * needed)


def _plan(
    model, it: InstanceType, tp: int, pp: int, estimate: MemoryEstimate, min_concurrency: float, accounting: Accounting
) -> Plan:
    """A plan is marginal when its KV headroom is thin, or, planned on an older release's
    accounting, when the newest release's projection says it would not start (an upgrade would
    break it)."""
    gpus = tp * pp
    drift = None
    if accounting != VLLM_0_32:
        projected = estimate_memory(model, it.gpu, tp, pp, estimate.settings, it.gpus_per_node, VLLM_0_32)
        drift = _failure(projected, min_concurrency)
    notes = (f"under {VLLM_0_32.label}: {drift}",) if drift else ()
    return Plan(
        model=model.name,
        gpu=it.gpu.name,
        instance_type=it.name,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        gpus=gpus,
        nodes=-(-gpus // it.gpus_per_node),
        gpus_per_pod=tp,
        pods=pp,
        weights_gib_total=model_weights_gib(model, estimate),
        min_concurrency=min_concurrency,
        marginal=bool(drift) or is_marginal(estimate, min_concurrency),
        estimate=estimate,
        notes=notes,
    )


def model_weights_gib(model: ModelArchitecture, estimate: MemoryEstimate) -> float:
    """All the weights one replica loads (what the startup probe's budget grows with)."""
    settings = estimate.settings
    return (
        weights_bytes_per_gpu(
            model,
            1,
            range(model.num_layers),
            True,
            True,
            checkpoint_weight_format(model, settings),
            activation_bytes(model, settings),
        )
        / GIB
    )


def _no_fit(model, settings, candidates, attempts, min_concurrency, tp, pp, accounting=VLLM_0_26) -> NoFitError:
    suggestions = _suggestions(model, settings, candidates, min_concurrency, tp, pp, accounting)
    gpus = ", ".join(sorted({it.gpu.name for it in candidates}))
    lines = [
        f"{model.name} does not fit on {gpus} with max_model_len={settings.max_model_len}"
        + (f" and min_concurrency={min_concurrency:g}" if min_concurrency != 1 else "")
        + ". Tried:"
    ]
    lines += [f"  - {a.describe()}" for a in _summarise(attempts)]
    if suggestions:
        lines.append("What would work:")
        lines += [f"  - {s}" for s in suggestions]
    return NoFitError("\n".join(lines), tuple(attempts), tuple(suggestions))


def _summarise(attempts: list[Attempt]) -> list[Attempt]:
    """Keep the failures readable: PP 1 and 2, then only the deepest pipeline tried."""
    seen: dict[tuple, Attempt] = {}
    for a in attempts:
        deep = a.pipeline_parallel_size > 2
        key = (a.gpu, a.tensor_parallel_size, "deepest" if deep else a.pipeline_parallel_size)
        if deep or key not in seen:
            seen[key] = a
    return list(seen.values())


def _suggestions(model, settings, candidates, min_concurrency, tp, pp, accounting=VLLM_0_26) -> list[str]:
    out: list[str] = []
    largest = max(candidates, key=lambda it: (it.gpu.torch_total_memory_gib, it.gpus_per_node))
    best_tp = tp or largest.gpus_per_node
    best_pp = pp or 1
    fit_len = longest_max_model_len(model, settings, largest, best_tp, best_pp, min_concurrency, accounting)
    if fit_len:
        out.append(
            f"max_model_len={fit_len} (the longest that fits {largest.gpu.name} TP={best_tp}"
            + (f" PP={best_pp}" if best_pp > 1 else "")
            + ")"
        )
    for label, changed in (
        ("kv_cache_dtype=fp8", replace(settings, kv_cache_dtype="fp8")),
        ("quantization=fp8", replace(settings, quantization="fp8")),
    ):
        if changed == settings or (label.startswith("quantization") and model.quantization is not None):
            continue
        try:
            plan = plan_model(
                model,
                changed,
                instance_types=[it.name for it in candidates],
                min_concurrency=min_concurrency,
                tensor_parallel_size=tp,
                pipeline_parallel_size=pp,
                explain=False,
                accounting=accounting,
            )
        except SizingError:
            continue
        out.append(f"{label}: {plan.gpu} TP={plan.tensor_parallel_size} PP={plan.pipeline_parallel_size}")
    others = [it for it in INSTANCES.values() if it.gpu.torch_total_memory_gib > largest.gpu.torch_total_memory_gib]
    if others:
        try:
            plan = plan_model(
                model,
                settings,
                instance_types=[it.name for it in others],
                min_concurrency=min_concurrency,
                tensor_parallel_size=tp,
                pipeline_parallel_size=pp,
                explain=False,
                accounting=accounting,
            )
            out.append(
                f"a larger GPU: {plan.gpu} ({plan.instance_type}) "
                f"TP={plan.tensor_parallel_size} PP={plan.pipeline_parallel_size}"
            )
        except SizingError:
            pass
    if not model.supports_pipeline_parallel:
        out.append(f"pipeline parallelism across nodes is not available: vLLM has no PP for {model.architecture}")
    elif pp is not None or tp is not None:
        try:
            plan = plan_model(
                model,
                settings,
                instance_types=[it.name for it in candidates],
                min_concurrency=min_concurrency,
                explain=False,
                accounting=accounting,
            )
            out.append(
                f"leave TP/PP to the planner: {plan.gpu} TP={plan.tensor_parallel_size} "
                f"PP={plan.pipeline_parallel_size} across {plan.nodes} node(s)"
            )
        except SizingError:
            pass
    return out


def longest_max_model_len(
    model, settings, it: InstanceType, tp: int, pp: int, min_concurrency: float, accounting: Accounting = VLLM_0_26
) -> int:
    """Binary search over whole blocks for the longest context this layout starts with."""

    def fits(length: int) -> bool:
        length_settings = replace(settings, max_model_len=length)
        est = estimate_memory(model, it.gpu, tp, pp, length_settings, it.gpus_per_node, accounting)
        return est.valid and est.starts and est.max_concurrency >= min_concurrency

    return 16 * largest_where(
        lambda blocks: fits(blocks * 16), min(settings.max_model_len, model.max_position_embeddings) // 16
    )
