"""``python -m sizing``: check one layout or plan one model, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from sizing import calibrate_command, throughput_cli, traffic_cli
from sizing.accounting import ACCOUNTINGS
from sizing.cli_numbers import positive_float, positive_int
from sizing.errors import NoFitError, SizingError
from sizing.estimate import MemoryEstimate
from sizing.gpus import GPUS, resolve_gpu
from sizing.models import load_model
from sizing.plan import Plan
from sizing.planner import check_layout, plan_model
from sizing.settings import DTYPES, KV_CACHE_DTYPES, QUANTIZATIONS, ServingSettings
from sizing.traffic import TrafficUnmetError
from smoke import compare as live_compare

CHECK_KEYS = (
    "valid",
    "starts",
    "reason",
    "weights_gib_per_gpu",
    "activation_gib_per_gpu",
    "kv_cache_gib_per_gpu",
    "kv_cache_bytes_per_token_per_gpu",
    "kv_cache_tokens",
    "max_concurrency",
    "basis",
    "kv_margin_gib_per_gpu",
    "promised_kv_cache_tokens",
    "promised_max_concurrency",
)
PLAN_KEYS = CHECK_KEYS + (
    "gpu",
    "instance_type",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "gpus",
    "nodes",
)
BAR_WIDTH = 50


class _Parser(argparse.ArgumentParser):
    """One line on bad input, naming what is accepted; never a usage dump or a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SizingError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m sizing", description="Predict vLLM's memory and plan TP/PP.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = commands.add_parser("check", help="what vLLM does with one (model, GPU, TP, PP)")
    check.add_argument("--gpu", required=True, help=f"one of {', '.join(GPUS)}")
    check.add_argument("--tp", type=positive_int, required=True, help="tensor-parallel size")
    check.add_argument("--pp", type=positive_int, default=1, help="pipeline-parallel size")
    check.add_argument(
        "--accounting",
        choices=sorted(ACCOUNTINGS),
        default="0.26",
        help="vLLM release whose accounting to follow: 0.26 is measured, 0.32 projected",
    )
    plan = commands.add_parser("plan", help="the cheapest layout that starts the model")
    plan.add_argument("--gpu", required=True, help=f"comma-separated, of {', '.join(GPUS)}")
    plan.add_argument("--min-concurrency", type=positive_float, default=1.0)
    plan.add_argument("--tp", type=positive_int, default=None, help="honour this tensor-parallel size")
    plan.add_argument("--pp", type=positive_int, default=None, help="honour this pipeline-parallel size")
    throughput = throughput_cli.add_parser(commands)
    traffic = traffic_cli.add_parser(commands)
    for sub in (check, plan, throughput, traffic):
        sub.add_argument("--model", required=True, help="catalog name, config.json, or a directory with one")
        sub.add_argument("--max-model-len", type=int, required=True)
        sub.add_argument("--gpu-memory-utilization", type=float, default=0.9)
        sub.add_argument("--max-num-batched-tokens", type=int, default=None)
        sub.add_argument("--max-num-seqs", type=int, default=None)
        sub.add_argument("--dtype", choices=DTYPES, default="auto")
        sub.add_argument("--quantization", choices=QUANTIZATIONS, default="none")
        sub.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto")
        sub.add_argument("--enforce-eager", action="store_true")
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    calibrate_command.register(commands)
    commands.add_parser(
        "compare", add_help=False, help="a live /metrics against plan.json (the smoke Job's check, smoke/live_check.py)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return live_compare.main(argv[1:])
    as_json = "--json" in argv
    try:
        args = _parser().parse_args(argv)
        if args.command == "calibrate":
            return calibrate_command.run(args)
        model = load_model(args.model)
        settings = ServingSettings(
            max_model_len=args.max_model_len,
            gpu_memory_utilization=args.gpu_memory_utilization,
            dtype=args.dtype,
            quantization=args.quantization,
            kv_cache_dtype=args.kv_cache_dtype,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            enforce_eager=args.enforce_eager,
        )
        if args.command == "throughput":
            prediction = throughput_cli.predict(args, model, settings)
            _emit(prediction.to_dict(), throughput_cli.KEYS, as_json, throughput_cli.render(prediction))
            return 0
        if args.command == "traffic":
            traffic = traffic_cli.plan(args, model, settings)
            _emit(traffic.to_dict(), traffic_cli.KEYS, as_json, traffic_cli.render(traffic))
            return 0
        if args.command == "check":
            estimate = check_layout(
                model,
                settings,
                gpu=args.gpu,
                tensor_parallel_size=args.tp,
                pipeline_parallel_size=args.pp,
                accounting=ACCOUNTINGS[args.accounting],
            )
            _emit(estimate.to_dict(), CHECK_KEYS, as_json, render_check(estimate))
            return 0
        gpus = [resolve_gpu(name).name for name in args.gpu.split(",") if name.strip()]
        plan = plan_model(
            model,
            settings,
            gpus=gpus,
            min_concurrency=args.min_concurrency,
            tensor_parallel_size=args.tp,
            pipeline_parallel_size=args.pp,
        )
        _emit(plan.to_dict(), PLAN_KEYS, as_json, render_plan(plan))
        return 0
    except (NoFitError, TrafficUnmetError) as error:
        if as_json:
            print(json.dumps({"error": str(error), "suggestions": list(error.suggestions)}, indent=2))
        else:
            print(f"error: {error}", file=sys.stderr)
        return 1
    except SizingError as error:
        message = " ".join(str(error).split())
        if as_json:
            print(json.dumps({"error": message}))
        else:
            print(f"error: {message}", file=sys.stderr)
        return 2


def _emit(data: dict, keys: tuple[str, ...], as_json: bool, table: str) -> None:
    if as_json:
        ordered = {key: data[key] for key in keys}
        ordered.update({k: v for k, v in data.items() if k not in ordered})
        print(json.dumps(_rounded(ordered), indent=2))
    else:
        print(table)


def _rounded(data):
    if isinstance(data, float):
        return round(data, 3)
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_rounded(v) for v in data]
    return data


def render_check(e: MemoryEstimate) -> str:
    layout = f"{e.gpu} TP={e.tensor_parallel_size} PP={e.pipeline_parallel_size}"
    lines = [f"{e.model} on {layout}, max_model_len={e.settings.max_model_len}"]
    if not e.valid:
        lines.append(f"  invalid: {e.reason}")
        return "\n".join(lines)
    lines.append(f"  verdict: {'starts' if e.starts else 'does not start'}" + ("" if e.starts else f": {e.reason}"))
    lines += _memory_lines(e)
    return "\n".join(lines)


def render_plan(p: Plan) -> str:
    e = p.estimate
    lines = [
        f"{p.model}: {p.gpu} TP={p.tensor_parallel_size} PP={p.pipeline_parallel_size} = {p.gpus} GPU(s) "
        f"on {p.nodes} x {p.instance_type}, max_model_len={e.settings.max_model_len}",
    ]
    if p.marginal:
        lines.append(
            "  MARGINAL: the KV cache promised (after its margin) is barely above what the requested "
            "concurrency needs and no larger layout fits; the deployed vLLM release may not start it."
        )
    for note in p.notes:
        lines.append(f"  note: {note}")
    lines += _memory_lines(e)
    return "\n".join(lines)


def _memory_lines(e: MemoryEstimate) -> list[str]:
    """A bar of the whole GPU: the budget's four parts, then what sits outside it."""
    budget = e.budget_gib_per_gpu
    total = budget / e.settings.gpu_memory_utilization
    graphs = "non-torch + CUDA graphs" if e.cudagraph_in_budget else "non-torch growth"
    parts = [
        ("W", "weights", e.weights_gib_per_gpu),
        ("A", "activation peak", e.activation_gib_per_gpu),
        ("O", graphs, e.overhead_gib_per_gpu),
        ("K", "KV cache", e.kv_cache_gib_per_gpu),
        ("C", "CUDA context, comms" + ("" if e.cudagraph_in_budget else ", graphs"), e.outside_budget_gib_per_gpu),
    ]
    bar = "".join(symbol * round(BAR_WIDTH * max(gib, 0.0) / total) for symbol, _, gib in parts)
    bar = bar[:BAR_WIDTH].ljust(BAR_WIDTH, ".")
    lines = [f"  per GPU of {total:.2f} GiB, budget {budget:.2f} GiB (x{e.settings.gpu_memory_utilization:g})  [{bar}]"]
    for symbol, label, gib in parts:
        lines.append(f"    {symbol} {label:<32} {gib:8.2f} GiB")
    used = sum(gib for _, _, gib in parts)
    lines.append(f"    . {'unused':<32} {max(total - used, 0.0):8.2f} GiB")
    lines.append(
        f"  KV cache: {e.kv_cache_tokens:,} tokens at {e.kv_cache_bytes_per_token_per_gpu:,} bytes/token, "
        f"max concurrency {e.max_concurrency:.2f} x {e.settings.max_model_len} tokens (as vLLM will log them)"
    )
    lines.append(
        f"  promised after a {e.kv_margin_gib_per_gpu:.2f} GiB margin ({e.basis}): "
        f"{e.promised_kv_cache_tokens:,} tokens, max concurrency {e.promised_max_concurrency:.2f}"
    )
    lines.append(f"  weights: {e.weight_format}; model runner {e.model_runner}")
    s = e.settings
    lines.append(
        f"  settings: dtype={s.dtype} quantization={s.quantization} kv_cache_dtype={s.kv_cache_dtype} "
        f"max_num_seqs={s.max_num_seqs} max_num_batched_tokens={s.max_num_batched_tokens}"
        + (" enforce_eager" if s.enforce_eager else "")
    )
    if s.assumed_defaults:
        lines.append(f"  assumed vllm serve defaults: {', '.join(s.assumed_defaults)}")
    lines.append(f"  accounting: {e.accounting}")
    return lines
