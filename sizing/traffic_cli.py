"""``python -m sizing traffic``: the layout and replicas that serve a request rate within p95 latencies.

What a stack's ``traffic`` does, for exploring before writing one: every layout the memory plan
starts on the named GPUs (the cheapest instance of each, at on-demand prices) is weighed.
"""

from __future__ import annotations

import argparse
import math

from sizing.architecture import ModelArchitecture
from sizing.cli_numbers import positive_float, positive_int
from sizing.gpus import GPUS, resolve_gpu
from sizing.planner import fitting_plans, instance_types_for
from sizing.settings import ServingSettings
from sizing.traffic import TrafficPlan, TrafficTarget, plan_for_traffic
from sizing.traffic_report import detail_lines

KEYS = ("chosen", "replicas", "atTarget", "target", "weighed", "setAside", "calibrated", "extrapolated")


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a finite number >= 0") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid: give a finite number >= 0")
    return value


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("traffic", help="the layout and replicas that serve a request rate, cheapest first")
    parser.add_argument("--gpu", required=True, help=f"comma-separated, of {', '.join(GPUS)}")
    parser.add_argument("--min-concurrency", type=positive_float, default=1.0)
    parser.add_argument("--tp", type=positive_int, default=None, help="weigh only this tensor-parallel size")
    parser.add_argument("--pp", type=positive_int, default=None, help="weigh only this pipeline-parallel size")
    parser.add_argument("--requests-per-second", type=positive_float, required=True, help="the peak to serve")
    parser.add_argument("--min-requests-per-second", type=non_negative_float, default=0.0, help="the trough")
    parser.add_argument("--input-len", type=positive_int, required=True, help="prompt tokens per request")
    parser.add_argument("--output-len", type=positive_int, required=True, help="generated tokens per request")
    parser.add_argument("--p95-ttft-s", type=positive_float, default=None, help="p95 time to first token")
    parser.add_argument("--p95-tpot-s", type=positive_float, default=None, help="p95 time per output token")
    return parser


def plan(args: argparse.Namespace, model: ModelArchitecture, settings: ServingSettings) -> TrafficPlan:
    gpus = [resolve_gpu(name).name for name in args.gpu.split(",") if name.strip()]
    instances = instance_types_for(gpus)
    target = TrafficTarget(
        requests_per_s=args.requests_per_second,
        input_tokens=args.input_len,
        output_tokens=args.output_len,
        p95_ttft_s=args.p95_ttft_s,
        p95_tpot_s=args.p95_tpot_s,
        min_requests_per_s=args.min_requests_per_second,
    )
    plans, attempts = fitting_plans(
        model,
        settings,
        instance_types=[it.name for it in instances],
        min_concurrency=args.min_concurrency,
        tensor_parallel_size=args.tp,
        pipeline_parallel_size=args.pp,
    )
    prices = {it.name: it.on_demand_usd_per_hour for it in instances}
    return plan_for_traffic(model, plans, target, node_usd_per_hour=prices, attempts=attempts)


def render(traffic: TrafficPlan) -> str:
    t, chosen = traffic.target, traffic.chosen
    per = traffic.capacity
    lines = [
        f"{traffic.plan.model}: {t.requests_per_s:g} requests/s of {t.input_tokens} in + {t.output_tokens} out tokens",
        f"  chosen: {chosen.layout} on {traffic.plan.instance_type}, {traffic.min_replicas}-{traffic.max_replicas} "
        f"replicas, ${chosen.usd_per_hour:.2f}/h at the peak, "
        f"${chosen.usd_per_million_output_tokens(t):.3f} per million output tokens",
        f"  per replica: {per.requests_per_s:.2f} requests/s = {per.requests_per_s * t.output_tokens:,.0f} output "
        f"tokens/s, {per.mean_in_flight:.1f} in flight",
        *detail_lines(traffic.to_dict(), "  "),
    ]
    return "\n".join(lines)
