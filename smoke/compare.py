"""``python -m smoke.compare``: a saved or live ``/metrics`` against one model of a ``plan.json``.

    python -m smoke.compare --plan build/prod/plan.json --model llama-3-1-8b --metrics http://host:8000/metrics

Prints measured against predicted (GiB, blocks, tokens, concurrency). Exit codes: 0 the plan's
guarantee holds on the engine; 1 the engine has fewer KV blocks than ``minConcurrency`` requests
of ``maxModelLen`` tokens need; 2 bad input (no such file, no ``vllm:cache_config_info``, a model
the plan does not hold). The smoke Job runs the same comparison (``smoke/live_check.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from smoke.live_check import Expectation, LiveCheckError, compare, engine_cache, read_metrics, read_plan

EXIT_HOLDS, EXIT_BROKEN, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise LiveCheckError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m smoke.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--plan", required=True, help="build/<stack>/plan.json, as `make synth` writes it")
    parser.add_argument("--model", required=True, help="the model's name (or catalog model, or served name)")
    parser.add_argument("--metrics", required=True, help="a saved /metrics text, or the server's /metrics URL")
    parser.add_argument("--block-size", type=int, default=None, help="the block size the plan assumed (notes a change)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for a metrics URL")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        expected = Expectation.from_plan(read_plan(args.plan), args.model)
        if args.block_size is not None:
            expected = Expectation(**{**expected.__dict__, "block_size": args.block_size})
        comparison = compare(expected, engine_cache(read_metrics(args.metrics, args.timeout)))
    except LiveCheckError as error:
        message = " ".join(str(error).split())
        if as_json:
            print(json.dumps({"error": message}))
        else:
            print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if as_json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print("\n".join(comparison.lines()))
    return EXIT_HOLDS if comparison.holds else EXIT_BROKEN


if __name__ == "__main__":
    sys.exit(main())
