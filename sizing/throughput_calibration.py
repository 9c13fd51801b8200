"""Derive the throughput model's efficiency factors from a measured vLLM throughput file.

Each factor comes from the run that isolates it, in ``sizing.throughput``'s order; the others are
held at their current values and the solves repeat until they agree. Only the prefill run and the single-sequence
decode are used: the rest of the file checks the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.gpus import GPUS, Gpu
from sizing.settings import ServingSettings
from sizing.throughput import Efficiency, RequestShape, predict_throughput

# A single model cannot separate the HBM fraction from the per-layer overhead (both only add to a
# weights-bound step), so the fraction is assumed: streaming copies sustain about 90% of the
# datasheet bandwidth on Hopper. The calibration points stay within 15% for any value 0.7-0.95.
ASSUMED_HBM_FRACTION = 0.9


@dataclass(frozen=True)
class CalibrationRun:
    kind: str
    input_tokens: int
    output_tokens: int
    concurrency: int
    wall_s: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    mean_request_latency_s: float
    median_sm_clock_mhz: float | None


@dataclass(frozen=True)
class Calibration:
    model: ModelArchitecture
    gpu: Gpu
    tensor_parallel_size: int
    settings: ServingSettings
    max_sm_clock_mhz: float
    runs: tuple[CalibrationRun, ...]

    def run(self, kind: str, concurrency: int | None = None) -> CalibrationRun:
        for r in self.runs:
            if r.kind == kind and (concurrency is None or r.concurrency == concurrency):
                return r
        raise SizingError(f"the calibration has no {kind} run at concurrency {concurrency}")


def read_calibration(data: Mapping[str, Any], index: int = 0) -> Calibration:
    """The shared file's layout: ``gpu``, then per model its config, engine settings and runs."""
    record = data["models"][index]
    engine = record["engine"]
    config = record["config"]
    name = record.get("model") or record.get("model_key") or "calibration model"
    model = ModelArchitecture.from_config(config, name=name)
    gpu = _gpu_by_device_name(data["gpu"]["name_nvidia_smi"])
    s = record["settings"]
    settings = ServingSettings(
        max_model_len=s["max_model_len"],
        gpu_memory_utilization=s["gpu_memory_utilization"],
        dtype=s["dtype"],
        max_num_seqs=engine["max_num_seqs"],
        max_num_batched_tokens=engine["max_num_batched_tokens"],
        kv_cache_dtype="auto" if engine["kv_cache_dtype"] == "auto" else "fp8",
    )
    runs = []
    for r in record["runs"]:
        if r["kind"] == "warmup":
            continue
        samples = r.get("nvidia_smi_1s_samples_during") or {}
        runs.append(
            CalibrationRun(
                kind=r["kind"],
                input_tokens=r["input_len"],
                output_tokens=r["output_len"],
                concurrency=r["concurrency"],
                wall_s=r["wall_s"],
                output_tokens_per_s=r["output_tok_s"],
                input_tokens_per_s=r["input_tok_s"],
                mean_request_latency_s=r["per_request_finish_s_client"]["mean"],
                median_sm_clock_mhz=(samples.get("sm_mhz") or {}).get("median"),
            )
        )
    return Calibration(
        model=model,
        gpu=gpu,
        tensor_parallel_size=s["tensor_parallel_size"],
        settings=settings,
        max_sm_clock_mhz=float(data["gpu"]["max_sm_clock_mhz"]),
        runs=tuple(runs),
    )


def _gpu_by_device_name(device_name: str) -> Gpu:
    """GPU feature discovery's product label is the CUDA device name with dashes for spaces."""
    for gpu in GPUS.values():
        if gpu.product_label == device_name.replace(" ", "-"):
            return gpu
    raise SizingError(f"the calibration's GPU {device_name!r} is not in the catalog ({', '.join(GPUS)})")


def predict_run(calibration: Calibration, run: CalibrationRun, efficiency: Efficiency | None = None):
    """The model's prediction for one measured run, arriving as it did: all at once."""
    return predict_throughput(
        calibration.model,
        calibration.gpu,
        calibration.tensor_parallel_size,
        calibration.settings,
        RequestShape(run.input_tokens, run.output_tokens),
        run.concurrency,
        arrival="burst",
        efficiency=efficiency,
    )


def derive_efficiency(
    calibration: Calibration, rounds: int = 5, hbm_fraction: float = ASSUMED_HBM_FRACTION
) -> Efficiency:
    """Solve, in turn, for the compute fraction (prefill run) and the per-layer overhead
    (single-sequence decode); the power-limited clock is read off the prefill run's samples."""
    prefill = calibration.run("prefill")
    single = calibration.run("decode", 1)
    if prefill.median_sm_clock_mhz is None:
        raise SizingError("the calibration's prefill run has no SM clock samples")
    e = Efficiency(
        hbm_fraction=hbm_fraction,
        compute_fraction=0.8,
        per_layer_overhead_s=20e-6,
        power_limited_clock_fraction=prefill.median_sm_clock_mhz / calibration.max_sm_clock_mhz,
    )

    def wall(run: CalibrationRun, eff: Efficiency) -> float:
        return run.concurrency * run.output_tokens / predict_run(calibration, run, eff).output_tokens_per_s

    for _ in range(rounds):
        compute = _solve(lambda x, e=e: wall(prefill, replace(e, compute_fraction=x)), prefill.wall_s, 0.05, 1.5)
        e = replace(e, compute_fraction=compute)
        overhead = _solve(lambda x, e=e: wall(single, replace(e, per_layer_overhead_s=x)), single.wall_s, 0.0, 1e-3)
        e = replace(e, per_layer_overhead_s=overhead)
    return e


def _solve(f: Callable[[float], float], target: float, low: float, high: float) -> float:
    """Bisection for f(x) = target, where f falls as x rises (efficiency) or rises (overhead)."""
    rising = f(high) > f(low)
    for _ in range(60):
        mid = (low + high) / 2
        if (f(mid) < target) == rising:
            low = mid
        else:
            high = mid
    return (low + high) / 2
