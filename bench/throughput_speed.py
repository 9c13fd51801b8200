"""Throughput predictions per second, the way a planner would call them over every candidate layout.

Reports figures and the machine; not a pass/fail check (the exit code is 0 whatever the speed).
Run: .venv/bin/python bench/throughput_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from machine import describe


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="passes over the grid")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from sizing import GPUS, ServingSettings, SizingError, load_model, model_names
    from sizing.memory import estimate_memory
    from sizing.throughput import RequestShape, predict_throughput

    shapes = (RequestShape(128, 512), RequestShape(1024, 256), RequestShape(4000, 1000))
    concurrencies = (1, 32, 256)
    settings = ServingSettings(max_model_len=8192)
    layouts = []
    for name in model_names():
        model = load_model(name)
        for gpu in GPUS.values():
            for tp in (1, 2, 4, 8):
                estimate = estimate_memory(model, gpu, tp, 1, settings)
                if estimate.valid and estimate.starts:
                    layouts.append((model, gpu, tp, estimate))
    print(describe())
    print(
        f"grid: {len(layouts)} layouts that start (catalog models x GPUs x TP 1-8, 8192-token context) "
        f"x {len(shapes)} request shapes x {len(concurrencies)} concurrencies"
    )
    for arrival in ("steady", "burst"):
        count = failed = 0
        start = time.perf_counter()
        for _ in range(args.repeat):
            for model, gpu, tp, estimate in layouts:
                for shape in shapes:
                    for concurrency in concurrencies:
                        try:
                            predict_throughput(
                                model, gpu, tp, settings, shape, concurrency, arrival=arrival, estimate=estimate
                            )
                        except SizingError:
                            failed += 1
                        count += 1
        elapsed = time.perf_counter() - start
        print(
            f"{arrival:>6}: {count} predictions in {elapsed:.3f} s on one core = {count / elapsed:,.0f} predictions/s "
            f"({elapsed / count * 1e3:.3f} ms each; {failed} refused)"
        )
    model, gpu, tp, _ = layouts[0]
    start = time.perf_counter()
    for _ in range(20 * args.repeat):
        predict_throughput(model, gpu, tp, settings, shapes[1], 64)
    elapsed = time.perf_counter() - start
    print(f"with the memory plan recomputed each time (no estimate passed): {20 * args.repeat / elapsed:,.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
