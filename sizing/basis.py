"""Whether a prediction stands on measurements of its model class, and the margin when it does not.

The accounting has one path per combination of what changes memory: the model runner, the layer
kinds (attention and MLP) on one GPU or with tensor parallelism, the weight format (and whether
it reaches MoE experts), the KV cache dtype, pipeline parallelism. A path is
*measured* when real vLLM 0.26 runs of that class are in the calibration set
(tests/sizing/calibration/), and *extrapolated* otherwise: its mechanisms are read from vLLM's
source, but no run has checked their sum.

Every plan keeps a margin off the KV cache it promises, so that no promise exceeds what vLLM
gives. On a measured path it is the largest over-prediction any calibration run shows, rounded
up: Qwen2.5-7B FP8 on H200, +0.165 GiB, so 0.2 GiB. An extrapolated path keeps more, derived from
the errors the calibration showed when the sizing predicted a class before any run of it was in
the set (the FP8-on-H200 runs were predicted with the constants measured on bf16 H100 runs):

- the largest over-prediction of KV, as a fraction of everything else the sizing predicts in the
  budget (weights + activation peak + non-torch growth + in-budget CUDA graphs), was Qwen2.5-7B
  FP8: +0.17 GiB of 10.67 GiB, 1.6 %; Llama-3.1-8B FP8: +0.07 of 10.55, 0.7 %. Rounded up: 2 %;
- the largest absolute over-prediction reported on an unseen class (an MoE model, issue 10) was
  0.3 GiB: the floor.

``tests/sizing/test_calibration.py`` recomputes the fraction from the calibration files and fails
when a case exceeds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sizing.architecture import FULL_ATTENTION, MLA_ATTENTION, MOE_MLP, SLIDING_WINDOW, ModelArchitecture
from sizing.quantization import WeightFormat

GIB = 1024**3
MEASURED_KV_MARGIN_GIB = 0.2
EXTRAPOLATION_MARGIN_FRACTION = 0.02
EXTRAPOLATION_MARGIN_FLOOR_GIB = 0.3

# The classes the calibration set holds (vLLM 0.26.0; H100 bf16 and H200 FP8 runs).
# (runner, MLP kind, one GPU or tensor parallel): the non-torch growth and the MoE kernels'
# buffers differ between one GPU and TP, so each regime counts only where a run measured it.
MEASURED_RUNNER_MLP = frozenset({("V2", "dense", "TP=1"), ("V2", "dense", "TP>1"), ("V1", "moe", "TP>1")})
MEASURED_ATTENTION = frozenset({FULL_ATTENTION})
MEASURED_WEIGHT_SCHEMES = ("W8A8-FP8 per-tensor", "W8A8-FP8 per-channel")  # plus unquantized checkpoints


def extrapolated_parts(
    model: ModelArchitecture,
    layers: Iterable[int],
    fmt: WeightFormat | None,
    v1_runner: bool,
    kv_cache_dtype_bytes: int,
    pipeline_parallel_size: int,
    tensor_parallel_size: int,
) -> tuple[str, ...]:
    """What of this prediction no calibration run covers, in words a plan can show."""
    parts: list[str] = []
    kinds = set(model.layer_counts(layers) if isinstance(layers, range) else (model.layers[i] for i in layers))
    runner = "V1" if v1_runner else "V2"
    regime = "TP=1" if tensor_parallel_size == 1 else "TP>1"
    for mlp in sorted({k.mlp for k in kinds}):
        if (runner, mlp, regime) not in MEASURED_RUNNER_MLP:
            where = " on one GPU" if regime == "TP=1" else " with tensor parallelism"
            parts.append(f"{'MoE' if mlp == MOE_MLP else 'dense'} layers{where} on the {runner} model runner")
    if fmt is not None and any(k.mlp == MOE_MLP for k in kinds):
        parts.append(f"{fmt.method} quantized experts")
    names = {SLIDING_WINDOW: "sliding-window attention", MLA_ATTENTION: "MLA attention"}
    for attention in sorted({k.attention for k in kinds} - MEASURED_ATTENTION):
        parts.append(names.get(attention, attention.replace("_", " ")))
    if fmt is not None and not fmt.scheme.startswith(MEASURED_WEIGHT_SCHEMES):
        parts.append(f"{fmt.method} {fmt.scheme} weights")
    if kv_cache_dtype_bytes != 2:
        parts.append("an fp8 KV cache")
    if pipeline_parallel_size > 1:
        parts.append("pipeline parallelism")
    return tuple(parts)


def kv_margin_bytes(extrapolated: tuple[str, ...], predicted_non_kv_bytes: float) -> float:
    if not extrapolated:
        return MEASURED_KV_MARGIN_GIB * GIB
    return max(EXTRAPOLATION_MARGIN_FLOOR_GIB * GIB, EXTRAPOLATION_MARGIN_FRACTION * predicted_non_kv_bytes)


def describe(extrapolated: tuple[str, ...]) -> str:
    if not extrapolated:
        return "measured"
    return "extrapolated (" + ", ".join(extrapolated) + ")"
