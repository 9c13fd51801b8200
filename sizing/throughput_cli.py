"""``python -m sizing throughput``: what one server delivers for a request shape at a concurrency.

The shared options (model, context, engine settings, ``--json``) are ``sizing.cli``'s; this module
adds the layout and the load, and renders the prediction.
"""

from __future__ import annotations

import argparse

from sizing.architecture import ModelArchitecture
from sizing.cli_numbers import positive_int
from sizing.gpus import GPUS, resolve_gpu
from sizing.settings import ServingSettings
from sizing.throughput import ARRIVALS, RequestShape, ThroughputPrediction, predict_throughput

KEYS = (
    "output_tokens_per_s",
    "input_tokens_per_s",
    "ttft_s",
    "tpot_s",
    "request_latency_s",
    "ttft_ms",
    "tpot_ms",
    "requests_per_s",
    "concurrency",
    "running",
    "limited_by",
    "calibrated",
    "extrapolated",
)


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("throughput", help="tokens/s, TTFT, TPOT and latency of one server")
    parser.add_argument("--gpu", required=True, help=f"one of {', '.join(GPUS)}")
    parser.add_argument("--tp", type=positive_int, required=True, help="tensor-parallel size")
    parser.add_argument("--pp", type=positive_int, default=1, help="pipeline-parallel size")
    parser.add_argument("--input-len", type=positive_int, required=True, help="prompt tokens per request")
    parser.add_argument("--output-len", type=positive_int, required=True, help="generated tokens per request")
    parser.add_argument("--concurrency", type=positive_int, required=True, help="requests in flight")
    parser.add_argument(
        "--arrival",
        choices=ARRIVALS,
        default="steady",
        help="steady: clients send the next request when one ends; burst: all requests arrive at once",
    )
    return parser


def predict(args: argparse.Namespace, model: ModelArchitecture, settings: ServingSettings) -> ThroughputPrediction:
    return predict_throughput(
        model,
        resolve_gpu(args.gpu),
        args.tp,
        settings,
        RequestShape(args.input_len, args.output_len),
        args.concurrency,
        pipeline_parallel_size=args.pp,
        arrival=args.arrival,
    )


def render(p: ThroughputPrediction) -> str:
    lines = [
        f"{p.model} on {p.gpu} TP={p.tensor_parallel_size} PP={p.pipeline_parallel_size}: "
        f"{p.input_tokens} in / {p.output_tokens} out tokens, concurrency {p.concurrency} ({p.arrival})",
        f"  output {p.output_tokens_per_s:,.0f} tokens/s, input {p.input_tokens_per_s:,.0f} tokens/s, "
        f"{p.requests_per_s:,.2f} requests/s",
        f"  time to first token {p.ttft_s:.3f} s, per output token {p.tpot_s * 1000:.2f} ms, "
        f"request latency {p.request_latency_s:.2f} s",
        f"  running {p.running} at once (limited by {p.limited_by}); KV cache {p.kv_cache_tokens:,} tokens",
    ]
    lines += [f"  calibrated: {part}" for part in p.calibrated]
    lines += [f"  extrapolated: {part}" for part in p.extrapolated]
    return "\n".join(lines)
