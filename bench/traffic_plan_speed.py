"""Traffic plans per second: every layout that starts weighed for a target, as ``pulumi preview`` does per model.

For each catalog model and request shape, the memory plan's fitting layouts on every instance type
are weighed by ``sizing.traffic.plan_for_traffic`` (each layout: its latency curve from throughput
predictions, then the birth-death chain's highest rate; the cheapest then simulated request by
request). A preview plans each model with a target once, so the target is under two seconds per
model on one core. Reports figures and the machine; the exit code is 0 whatever the speed.
Run: .venv/bin/python bench/traffic_plan_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from machine import describe

TARGET_S_PER_MODEL = 2.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1, help="passes over the grid")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from sizing import INSTANCES, ServingSettings, SizingError, load_model, model_names
    from sizing.arrival_simulation import simulate_arrivals
    from sizing.planner import fitting_plans
    from sizing.throughput import step_cost
    from sizing.traffic import TrafficTarget, plan_for_traffic, replica_capacity

    prices = {name: it.on_demand_usd_per_hour for name, it in INSTANCES.items()}
    targets = (
        TrafficTarget(requests_per_s=20.0, input_tokens=1000, output_tokens=200, p95_ttft_s=1.0, p95_tpot_s=0.05),
        TrafficTarget(requests_per_s=5.0, input_tokens=4000, output_tokens=1000, p95_ttft_s=2.0, p95_tpot_s=0.1),
    )
    settings = ServingSettings(max_model_len=8192)
    print(describe())
    plans_per_model, fit_nowhere = {}, []
    for name in model_names():
        try:
            plans_per_model[name], _ = fitting_plans(load_model(name), settings, instance_types=list(INSTANCES))
        except SizingError:
            fit_nowhere.append(name)  # e.g. a 4k-context model at 8192 tokens
    weighed = sum(len(p) for p in plans_per_model.values())
    print(
        f"grid: {len(plans_per_model)} catalog models x {len(targets)} targets, every layout that starts on "
        f"{len(INSTANCES)} instance types at an 8192-token context ({weighed} layouts per pass per target; "
        f"{len(fit_nowhere)} models start nowhere at that context)"
    )
    count = unmet = 0
    slowest, slowest_model = 0.0, ""
    start = time.perf_counter()
    for _ in range(args.repeat):
        # Cold each pass: the capacities, simulations and step costs are cached within a process.
        replica_capacity.cache_clear()
        simulate_arrivals.cache_clear()
        step_cost.cache_clear()
        for name, plans in plans_per_model.items():
            model = load_model(name)
            for target in targets:
                began = time.perf_counter()
                try:
                    plan_for_traffic(model, plans, target, node_usd_per_hour=prices)
                except SizingError:
                    unmet += 1
                took = time.perf_counter() - began
                if took > slowest:
                    slowest, slowest_model = took, name
                count += 1
    elapsed = time.perf_counter() - start
    met = "met" if slowest < TARGET_S_PER_MODEL else "not met on this run"
    print(
        f"traffic plans: {count} in {elapsed:.3f} s on one core = {elapsed / count * 1e3:.1f} ms per model and target "
        f"({unmet} unmet)"
    )
    print(f"slowest: {slowest * 1e3:.1f} ms ({slowest_model}) (target < {TARGET_S_PER_MODEL:g} s per model: {met})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
