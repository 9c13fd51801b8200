"""Why the planner chose a layout: the cheaper layouts it passed over and by how much, and what would make one fit.

The planner returns the first layout that fits in its order (fewest GPUs, then GPU-hour price, then
the smaller TP) and keeps no record of what it passed over, so its hot path stays a loop of
estimates. This module replays that order up to the chosen layout, once per model at preview, and
says for each skipped layout what it lacked in the plan's own units (GiB of KV cache per GPU,
requests at the context). For the largest skipped layout it tries the changes the no-fit path
suggests (a shorter context, fewer concurrent requests, an fp8 KV cache, fp8 weights) and names
those that would make it fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sizing.accounting import VLLM_0_26, Accounting
from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.estimate import MemoryEstimate
from sizing.instances import InstanceType
from sizing.memory import estimate_memory
from sizing.plan import Plan
from sizing.planner import (
    Attempt,
    _failure,
    _layouts,
    _plan,
    _summarise,
    instance_types_for,
)
from sizing.search import largest_where
from sizing.settings import ServingSettings

SNAKE_NAMES = {
    "min_concurrency": "min_concurrency",
    "max_model_len": "max_model_len",
    "kv_cache_dtype": "kv_cache_dtype",
    "quantization": "quantization",
}


@dataclass(frozen=True)
class Explanation:
    chosen: str
    passed_over: tuple[str, ...]
    cheaper_if: tuple[str, ...]
    changes: tuple[tuple[str, float | int | str], ...] = ()  # (setting, value) behind each cheaper_if

    def to_dict(self) -> dict:
        return {"chosen": self.chosen, "passedOver": list(self.passed_over), "cheaperIf": list(self.cheaper_if)}


def _context(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def _layout(tp: int, pp: int, gpu: str) -> str:
    return f"{gpu} TP={tp}" + (f" PP={pp}" if pp > 1 else "")


def shortfall(estimate: MemoryEstimate, min_concurrency: float, names: dict[str, str]) -> str:
    """What one layout lacked, in the plan's units."""
    if not estimate.valid or not estimate.starts:
        return estimate.reason
    needed = estimate.kv_cache_gib_needed_per_request * min_concurrency
    return (
        f"{names['min_concurrency']} {min_concurrency:g} at {_context(estimate.settings.max_model_len)} needs "
        f"{needed:.1f} GiB of KV cache per GPU, {estimate.kv_cache_gib_per_gpu:.1f} GiB left "
        f"(holds {estimate.max_concurrency:.1f} requests)"
    )


def explain_plan(
    model: ModelArchitecture,
    settings: ServingSettings,
    plan: Plan,
    *,
    instance_types: list[str],
    min_concurrency: float,
    tensor_parallel_size: int | None = None,
    pipeline_parallel_size: int | None = None,
    names: dict[str, str] = SNAKE_NAMES,
    accounting: Accounting = VLLM_0_26,
) -> Explanation:
    """Why ``plan`` (made with ``accounting``) is what the planner chose, replaying its order."""
    candidates = instance_types_for(None, instance_types)
    passed: list[tuple[Attempt, InstanceType, MemoryEstimate]] = []
    for it, tp, pp in _layouts(candidates, tensor_parallel_size, pipeline_parallel_size, model):
        if (it.name, tp, pp) == (plan.instance_type, plan.tensor_parallel_size, plan.pipeline_parallel_size):
            break
        estimate = estimate_memory(model, it.gpu, tp, pp, settings, it.gpus_per_node, accounting)
        failure = _failure(estimate, min_concurrency)
        reason = shortfall(estimate, min_concurrency, names) if failure else "fits only marginally"
        passed.append((Attempt(it.name, it.gpu.name, tp, pp, reason), it, estimate))
    fixed = []
    if tensor_parallel_size:
        fixed.append(f"TP={tensor_parallel_size} as configured")
    if pipeline_parallel_size:
        fixed.append(f"PP={pipeline_parallel_size} as configured")
    order = "the first layout that fits in the order fewest GPUs, cheapest GPU-hour, smaller TP"
    chosen = (
        f"{plan.gpus} x {plan.gpu} ({_layout(plan.tensor_parallel_size, plan.pipeline_parallel_size, plan.gpu)}) "
        f"on {plan.nodes} {plan.instance_type}: "
        + (order if passed else "the smallest layout allowed")
        + (f" ({', '.join(fixed)})" if fixed else "")
    )
    kept = {id(a) for a in _summarise([a for a, _, _ in passed])}
    passed_over = tuple(a.describe() for a, _, _ in passed if id(a) in kept)
    cheaper = [(a, it, e) for a, it, e in passed if a.tensor_parallel_size * a.pipeline_parallel_size < plan.gpus]
    found = _cheaper_if(model, settings, cheaper[-1], min_concurrency, names, accounting) if cheaper else []
    return Explanation(chosen, passed_over, tuple(t for t, _ in found), tuple(c for _, c in found))


def _fits(
    model, it: InstanceType, tp: int, pp: int, settings: ServingSettings, min_concurrency: float, accounting: Accounting
) -> bool:
    """Fits as the planner would take it: starts, holds the requests, and not marginal (its headroom and the
    deployed release's projection)."""
    estimate = estimate_memory(model, it.gpu, tp, pp, settings, it.gpus_per_node, accounting)
    plan = _plan(model, it, tp, pp, estimate, min_concurrency, accounting)
    return _failure(estimate, min_concurrency) is None and not plan.marginal


def _cheaper_if(
    model, settings, target, min_concurrency: float, names: dict[str, str], accounting: Accounting
) -> list[tuple[str, tuple]]:
    attempt, it, estimate = target
    tp, pp = attempt.tensor_parallel_size, attempt.pipeline_parallel_size
    on = f"{_layout(tp, pp, attempt.gpu)} ({tp * pp} GPU{'s' if tp * pp > 1 else ''})"
    out = []
    tenths = 0
    if estimate.valid and estimate.starts:
        tenths = largest_where(
            lambda n: n > 0 and _fits(model, it, tp, pp, settings, n / 10, accounting),
            int(estimate.max_concurrency * 10),
        )
    most = tenths / 10
    if 0 < most < min_concurrency:
        out.append(
            (f"{names['min_concurrency']} {most:g} (from {min_concurrency:g}) fits {on}", ("min_concurrency", most))
        )
    blocks = largest_where(
        lambda n: (
            n > 0 and _fits(model, it, tp, pp, replace(settings, max_model_len=n * 16), min_concurrency, accounting)
        ),
        min(settings.max_model_len, model.max_position_embeddings) // 16,
    )
    length = blocks * 16
    if 0 < length < settings.max_model_len:
        out.append(
            (f"{names['max_model_len']} {length} (from {settings.max_model_len}) fits {on}", ("max_model_len", length))
        )
    changes = []
    if settings.kv_cache_dtype == "auto":
        changes.append((f"{names['kv_cache_dtype']} fp8", "kv_cache_dtype"))
    if settings.quantization == "none" and model.quantization is None:
        changes.append((f"{names['quantization']} fp8", "quantization"))
    for label, setting in changes:
        try:
            changed = replace(settings, **{setting: "fp8"})
        except SizingError:
            continue
        if _fits(model, it, tp, pp, changed, min_concurrency, accounting):
            out.append((f"{label} fits {on}", (setting, "fp8")))
    return out
