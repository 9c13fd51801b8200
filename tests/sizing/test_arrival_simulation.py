"""sizing.arrival_simulation: the scheduler stepped request by request, the check on the traffic plan's closed form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizing.arrival_simulation import simulate_arrivals
from sizing.models import load_model
from sizing.planner import fitting_plans
from sizing.settings import ServingSettings
from sizing.throughput import RequestShape
from sizing.throughput_calibration import predict_run, read_calibration
from sizing.traffic import TrafficTarget, replica_capacity

CALIBRATION = Path(__file__).parent / "calibration" / "vllm-0.26-h200-throughput.json"


def plan_of(model_name: str, instance_type: str, tp: int, max_model_len: int = 8192):
    model = load_model(model_name)
    plans, _ = fitting_plans(
        model, ServingSettings(max_model_len=max_model_len), instance_types=[instance_type], tensor_parallel_size=tp
    )
    return model, plans[0]


def test_a_burst_reproduces_the_measured_h200_runs_as_the_burst_model_does():
    # Every request at once: the simulation schedules the same steps as the calibrated burst model,
    # so it lands on the measured runs within the same 15% (and on the burst model within 1%).
    calibration = read_calibration(json.loads(CALIBRATION.read_text()))
    plans, _ = fitting_plans(
        calibration.model,
        calibration.settings,
        gpus=[calibration.gpu.name],
        tensor_parallel_size=calibration.tensor_parallel_size,
    )
    plan = plans[0]
    assert len(calibration.runs) >= 5
    for run in calibration.runs:
        shape = RequestShape(run.input_tokens, run.output_tokens)
        simulated = simulate_arrivals(plan, calibration.model, shape, 1e9, requests=run.concurrency, warmup_fraction=0)
        burst = predict_run(calibration, run)
        assert simulated.output_tokens_per_s == pytest.approx(burst.output_tokens_per_s, rel=0.01), run
        assert simulated.output_tokens_per_s == pytest.approx(run.output_tokens_per_s, rel=0.15), run


def test_more_load_means_more_in_flight_and_slower_tokens():
    model, plan = plan_of("llama-3.1-8b", "p5.48xlarge", 1)
    shape = RequestShape(1000, 200)
    loads = [simulate_arrivals(plan, model, shape, rate, requests=1500) for rate in (2.0, 10.0, 20.0)]
    assert [x.mean_in_flight for x in loads] == sorted(x.mean_in_flight for x in loads)
    assert [x.p95_tpot_s for x in loads] == sorted(x.p95_tpot_s for x in loads)
    # Little's law holds in the simulation itself: in flight = rate x mean latency, within the p95 spread.
    assert loads[0].mean_in_flight == pytest.approx(2.0 * (loads[0].p95_ttft_s + 199 * loads[0].p95_tpot_s), rel=0.3)


@pytest.mark.parametrize(
    "model_name, tp, shape, ttft_s, tpot_s",
    [
        ("llama-3.1-8b", 1, (1000, 200), 1.0, 0.05),
        ("llama-3.1-70b", 4, (1000, 200), 1.0, 0.05),
        ("qwen2.5-72b", 4, (500, 500), 2.0, 0.04),
        ("mixtral-8x7b", 2, (1000, 300), 1.0, 0.03),
        ("deepseek-v2-lite", 1, (1000, 300), 1.0, 0.03),
    ],
)
def test_the_closed_form_capacity_holds_within_20_percent_when_decode_dominates(model_name, tp, shape, ttft_s, tpot_s):
    model, plan = plan_of(model_name, "p5.48xlarge", tp)
    target = TrafficTarget(10.0, *shape, p95_ttft_s=ttft_s, p95_tpot_s=tpot_s)
    capacity = replica_capacity(plan, model, target)
    assert capacity is not None and capacity.limited_by == "p95 TPOT"
    at = simulate_arrivals(plan, model, target.shape, capacity.requests_per_s, requests=2000)
    assert at.p95_tpot_s <= tpot_s * 1.2 and at.p95_ttft_s <= ttft_s
    beyond = simulate_arrivals(plan, model, target.shape, capacity.requests_per_s * 1.3, requests=2000)
    assert beyond.p95_tpot_s > tpot_s, "the closed form does not leave a third of a replica unused"
