"""Predicted vs measured for every run of a vLLM throughput calibration file, as a markdown table.

Run: .venv/bin/python bench/throughput_report.py [calibration.json] [--sensitivity]
(default: the shared H200 file vendored in tests/sizing/calibration/). ``--sensitivity`` adds how
the assumed HBM fraction moves the fit and an extrapolation (it cannot be derived from one model).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "tests" / "sizing" / "calibration" / "vllm-0.26-h200-throughput.json"
DERIVES = {("prefill", 64): "compute fraction", ("decode", 1): "per-layer overhead"}


def _err(predicted: float, measured: float) -> str:
    return f"{(predicted / measured - 1) * 100:+.1f}%"


def main(argv: list[str]) -> int:
    from sizing.throughput import CALIBRATED
    from sizing.throughput_calibration import predict_run, read_calibration

    paths = [a for a in argv if not a.startswith("--")]
    path = Path(paths[0]) if paths else DEFAULT
    calibration = read_calibration(json.loads(path.read_text()))
    print(
        f"{calibration.model.name} on {calibration.gpu.name}, TP={calibration.tensor_parallel_size}, "
        f"vLLM 0.26.0, all requests of a run arriving at once ({path.name})\n"
    )
    print(
        "| run | input x output | concurrency | output tok/s measured | predicted | error "
        "| mean request latency measured (s) | predicted | error | TTFT predicted (s) | TPOT predicted (ms) "
        "| role |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for run in calibration.runs:
        p = predict_run(calibration, run)
        ttft = f"{p.ttft_s:.3f}"
        if run.output_tokens == 1:
            ttft += f" (measured {run.mean_request_latency_s:.3f}, {_err(p.ttft_s, run.mean_request_latency_s)})"
        role = DERIVES.get((run.kind, run.concurrency))
        for predicted, measured in (
            (p.output_tokens_per_s, run.output_tokens_per_s),
            (p.request_latency_s, run.mean_request_latency_s),
        ):
            worst = max(worst, abs(predicted / measured - 1))
        print(
            f"| {run.kind} | {run.input_tokens} x {run.output_tokens} | {run.concurrency} "
            f"| {run.output_tokens_per_s:,.0f} | {p.output_tokens_per_s:,.0f} "
            f"| {_err(p.output_tokens_per_s, run.output_tokens_per_s)} "
            f"| {run.mean_request_latency_s:.3f} | {p.request_latency_s:.3f} "
            f"| {_err(p.request_latency_s, run.mean_request_latency_s)} "
            f"| {ttft} | {p.tpot_s * 1000:.2f} "
            f"| {'derives the ' + role if role else 'check'} |"
        )
    e = CALIBRATED
    print(
        f"\nLargest error: {worst * 100:.1f}%. Efficiency factors: HBM {e.hbm_fraction:.2f} of datasheet bandwidth "
        f"(assumed), tensor cores {e.compute_fraction:.3f} of datasheet peak at the clock held, "
        f"power-limited clock {e.power_limited_clock_fraction:.3f} of boost, "
        f"{e.per_layer_overhead_s * 1e6:.1f} us per layer per step. "
        "Input tokens/s follow output tokens/s (same wall time). First-token times were not recorded; "
        "TTFT is measured only for the prefill run (one output token: finish = first token)."
    )
    if "--sensitivity" in argv:
        sensitivity(calibration)
    return 0


def sensitivity(calibration) -> None:
    from dataclasses import replace

    from sizing import GPUS, ServingSettings, load_model
    from sizing.throughput import RequestShape, predict_throughput
    from sizing.throughput_calibration import derive_efficiency, predict_run

    model = load_model("llama-3.1-70b")
    shape = RequestShape(1024, 256)
    settings = ServingSettings(max_model_len=8192)
    print(
        "\n| assumed HBM fraction | derived tensor-core fraction | derived overhead (us/layer) | largest error "
        "| Llama-3.1-70B H100 TP=4: TPOT at C=1 (ms) | output tok/s at C=64 |"
    )
    print("|---|---|---|---|---|---|")
    for fraction in (0.7, 0.8, 0.9, 0.95):
        e = derive_efficiency(replace(calibration), hbm_fraction=fraction)
        worst = 0.0
        for run in calibration.runs:
            p = predict_run(calibration, run, e)
            worst = max(
                worst,
                abs(p.output_tokens_per_s / run.output_tokens_per_s - 1),
                abs(p.request_latency_s / run.mean_request_latency_s - 1),
            )
        one = predict_throughput(model, GPUS["H100-80GB"], 4, settings, shape, 1, efficiency=e)
        many = predict_throughput(model, GPUS["H100-80GB"], 4, settings, shape, 64, efficiency=e)
        print(
            f"| {fraction:.2f} | {e.compute_fraction:.3f} | {e.per_layer_overhead_s * 1e6:.1f} | {worst * 100:.1f}% "
            f"| {one.tpot_s * 1e3:.2f} | {many.output_tokens_per_s:,.0f} |"
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
