"""Plans per second over every catalog model x GPU x four context lengths, and `import sizing` time.

Targets (issue 2), printed next to the figures: 1,000 plans in under a second on one core;
`import sizing` under 100 ms. The exit code is 0 whatever the speed: a figure from a loaded
machine is reported with that machine's description, not turned into a failure.
Run: .venv/bin/python bench/plan_throughput.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe, versus

ROOT = Path(__file__).resolve().parents[1]

CONTEXT_LENGTHS = (4096, 8192, 32768, 131072)


def import_time_ms(runs: int = 5) -> float:
    """Median wall time of a fresh interpreter importing sizing, minus one importing nothing."""

    def timed(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    return (timed("import sizing") - timed("pass")) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=4, help="passes over the grid")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from sizing import GPUS, NoFitError, ServingSettings, load_model, model_names, plan_model

    print(describe())

    models = [load_model(name) for name in model_names()]
    grid = [
        (model, gpu, ServingSettings(max_model_len=min(length, model.max_position_embeddings)))
        for model in models
        for gpu in GPUS
        for length in CONTEXT_LENGTHS
    ]
    plans = fits = 0
    start = time.perf_counter()
    for _ in range(args.repeat):
        for model, gpu, settings in grid:
            try:
                plan_model(model, settings, gpus=[gpu])
                fits += 1
            except NoFitError:
                pass
            plans += 1
    elapsed = time.perf_counter() - start
    rate = plans / elapsed
    print(
        f"grid: {len(models)} models x {len(GPUS)} GPUs x {len(CONTEXT_LENGTHS)} contexts = {len(grid)} plans per pass"
    )
    print(
        f"plans: {plans} in {elapsed:.3f} s on one core = {rate:,.0f} plans/s ({fits} fit, {plans - fits} fit nowhere)"
    )
    print(versus(f"1,000 plans take {1000 / rate:.3f} s", "< 1 s", rate >= 1000))
    hard = [(m, g, s) for m, g, s in grid if g == "A100-40GB"]
    start = time.perf_counter()
    failures = 0
    for model, gpu, settings in hard:
        try:
            plan_model(model, settings, gpus=[gpu], min_concurrency=512, pipeline_parallel_size=1)
        except NoFitError:
            failures += 1
    hard_elapsed = time.perf_counter() - start
    print(
        f"no-fit path (explanations and suggestions): {len(hard)} plans, {failures} fit nowhere, "
        f"{len(hard) / hard_elapsed:,.0f} plans/s"
    )
    ms = import_time_ms()
    print(versus(f"import sizing: {ms:.1f} ms", "< 100 ms", ms < 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
