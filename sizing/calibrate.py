"""Measurements of a real vLLM engine -> one calibration record (the schema of tests/sizing/calibration/).

A record is what the engine reported for one (model, GPU, TP, settings): weights, KV cache GiB,
tokens, blocks and concurrency, CUDA-graph memory and the memory profile. The tests check the
sizing against every record of every file in tests/sizing/calibration/, so a user who runs a new
vLLM release adds a file made here and sees where the accounting is off.

Sources, either or both:
- the engine's start-up log (INFO lines suffice; DEBUG adds the memory profile), as vLLM 0.26.0
  and 0.32.0 write them: "non-default args", "Model loading took", "Available KV cache memory",
  "GPU KV cache size", "Maximum concurrency for", "Graph capturing finished ... took";
- a live-check report (the JSON the smoke Job writes to its ConfigMap, or ``python -m
  smoke.compare --json``): the blocks, block size, cache dtype and gpu_memory_utilization the
  engine exported on /metrics.

With TP > 1 every worker logs its own figures; vLLM allocates the smallest worker's KV cache to
all, so the smallest "Available KV cache memory" is kept.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

from sizing.errors import SizingError
from sizing.gpus import Gpu

GIB = r"([\d.]+)\s*GiB"
PATTERNS = {
    "weights_gib_per_gpu": re.compile(r"Model loading took " + GIB),
    "kv_available_gib": re.compile(r"Available KV cache memory: " + GIB),
    "kv_tokens": re.compile(r"\b[A-Z]+(?: \+ host)? KV cache size: ([\d,]+) tokens"),
    "max_concurrency": re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x"),
    "cudagraph_gib": re.compile(r"Graph capturing finished in [\d.]+ secs?, took " + GIB),
    "cudagraph_estimate": re.compile(r"CUDA graph pool memory: " + GIB + r" \(actual\), " + GIB + r" \(estimated\)"),
    "cudagraph_profiling": re.compile(r"CUDA graph memory profiling is enabled"),
    "non_default_args": re.compile(r"non-default args: (\{.*\})\s*$"),
    "batched_tokens": re.compile(r"max_num_batched_tokens=(\d+)"),
    "defaulting_seqs": re.compile(r"Defaulting max_num_seqs to (\d+)"),
    "util": re.compile(r"Desired GPU memory utilization is \(([\d.]+), " + GIB + r"\)"),
    "requested": re.compile(r"Requested memory: ([\d.]+) \(util\), " + GIB),
    "snapshot": re.compile(
        r"worker init memory snapshot: .*?free_memory=" + GIB + r", total_memory=" + GIB + r", cuda_memory=" + GIB
    ),
    "profile": re.compile(
        r"Total non KV cache memory: "
        + GIB
        + r"; torch peak memory increase: "
        + GIB
        + r"; non-torch forward increase memory: "
        + GIB
        + r"; weights memory: "
        + GIB
    ),
    "free_after": re.compile(r"Free memory after profiling: " + GIB + r" \(total\)"),
    "runner": re.compile(r"Using (V\d) Model Runner"),
    "version": re.compile(r"LLM engine \(v([\w.+-]+)\)"),
    "error": re.compile(r"\b(\w+Error|\w+Exception): (.*)$"),
}


def _all(name: str, lines: Iterable[str]) -> list[re.Match]:
    pattern = PATTERNS[name]
    return [match for line in lines if (match := pattern.search(line))]


def _first(name: str, lines: list[str]) -> re.Match | None:
    found = _all(name, lines)
    return found[0] if found else None


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def read_log(text: str) -> dict[str, Any]:
    """The figures one start-up log holds; keys absent when the log does not say."""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    found: dict[str, Any] = {}
    args = _first("non_default_args", lines)
    if args:
        try:
            found["args"] = ast.literal_eval(args.group(1))
        except (ValueError, SyntaxError):
            raise SizingError(f"cannot read the log's non-default args: {args.group(1)[:200]}") from None
    for key in ("weights_gib_per_gpu", "cudagraph_gib"):
        if values := [_number(m.group(1)) for m in _all(key, lines)]:
            found[key] = max(values)
    if values := [_number(m.group(1)) for m in _all("kv_available_gib", lines)]:
        found["kv_available_gib"] = min(values)
    if match := _first("kv_tokens", lines):
        found["kv_tokens"] = int(_number(match.group(1)))
    if match := _first("max_concurrency", lines):
        found["max_model_len_logged"] = int(_number(match.group(1)))
        found["max_concurrency"] = _number(match.group(2))
    if _first("cudagraph_profiling", lines) and (match := _first("cudagraph_estimate", lines)):
        found["cudagraph_estimate_gib_subtracted_before_kv"] = _number(match.group(2))
    if match := _first("batched_tokens", lines):
        found["max_num_batched_tokens"] = int(match.group(1))
    if match := _first("defaulting_seqs", lines):
        found["max_num_seqs"] = int(match.group(1))
    if match := _first("util", lines) or _first("requested", lines):
        found["gpu_memory_utilization"] = _number(match.group(1))
        found["requested_gib"] = _number(match.group(2))
    if match := _first("snapshot", lines):
        found["free_gib_at_worker_init"], found["total_gib_torch"], found["cuda_context_gib"] = (
            _number(match.group(i)) for i in (1, 2, 3)
        )
    if match := _first("profile", lines):
        keys = ("non_kv_cache_total_gib", "torch_peak_activation_increase_gib", "non_torch_forward_increase_gib")
        found.update({key: _number(match.group(i)) for i, key in enumerate(keys, start=1)})
        found["weights_gib"] = _number(match.group(4))
    if match := _first("free_after", lines):
        found["free_gib_after_profiling_total"] = _number(match.group(1))
    if match := _first("runner", lines):
        found["model_runner"] = match.group(1)
    if match := _first("version", lines):
        found["vllm_version"] = match.group(1)
    if errors := _all("error", lines):
        found["error"] = f"{errors[-1].group(1)}: {errors[-1].group(2).strip()}"[:1500]
    return found


def read_live_check(report: dict[str, Any]) -> dict[str, Any]:
    """The engine's cache as the smoke Job's live check read it from /metrics."""
    measured = report.get("measured") if isinstance(report, dict) else None
    if not isinstance(measured, dict) or "num_gpu_blocks" not in measured or "block_size" not in measured:
        raise SizingError(
            "the live-check report has no measured num_gpu_blocks and block_size: give the JSON the smoke Job "
            "writes to its ConfigMap (key live-check.json) or `python -m smoke.compare --json` prints"
        )
    found = {"num_gpu_blocks": int(measured["num_gpu_blocks"]), "kv_block_size": int(measured["block_size"])}
    for key, target in (("gpu_memory_utilization", "gpu_memory_utilization"), ("cache_dtype", "kv_cache_dtype")):
        if measured.get(key) is not None:
            found[target] = measured[key]
    predicted = report.get("predicted") or {}
    if predicted.get("max_model_len"):
        found["max_model_len"] = int(predicted["max_model_len"])
    return found


def calibration_record(
    *,
    case: str,
    model: str,
    architecture: dict[str, Any],
    gpu: Gpu,
    log: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    tensor_parallel_size: int | None = None,
    log_path: str | None = None,
) -> dict[str, Any]:
    """One record; settings come from the log's non-default args, then the live check, then vLLM's defaults."""
    log, live = log or {}, live or {}
    if not log and not live:
        raise SizingError("nothing to calibrate from: give a vLLM start-up log (--log) or a live-check report")
    args = log.get("args", {})
    tp = tensor_parallel_size or int(args.get("tensor_parallel_size", 1))
    max_model_len = args.get("max_model_len") or log.get("max_model_len_logged") or live.get("max_model_len")
    util = args.get("gpu_memory_utilization") or log.get("gpu_memory_utilization") or live.get("gpu_memory_utilization")
    missing = [
        name for name, value in (("max_model_len", max_model_len), ("gpu_memory_utilization", util)) if not value
    ]
    if missing:
        raise SizingError(
            f"the measurements do not say {' or '.join(missing)}: give the start-up log with its "
            "'non-default args' line, or a live-check report"
        )
    total = log.get("total_gib_torch")
    if total is not None and abs(total - gpu.torch_total_memory_gib) > 0.1:
        raise SizingError(
            f"the log's GPU has {total} GiB (torch), {gpu.name} has {gpu.torch_total_memory_gib}: "
            "give the GPU it ran on"
        )
    block_size = live.get("kv_block_size") or int(args.get("block_size", 16))
    kv_tokens = log.get("kv_tokens")
    blocks = live.get("num_gpu_blocks")
    if kv_tokens is None and blocks is not None:
        kv_tokens = blocks * block_size
    if blocks is None and kv_tokens is not None:
        blocks = kv_tokens // block_size
    per_request = -(-int(max_model_len) // block_size)
    started = kv_tokens is not None
    enforce_eager = bool(args.get("enforce_eager", False))
    record: dict[str, Any] = {
        "case": case,
        "model": model,
        "architecture": architecture,
        "tp": tp,
        "max_model_len": int(max_model_len),
        "dtype": args.get("dtype", "auto"),
        "gpu_memory_utilization": float(util),
        "enforce_eager": enforce_eager,
        "load_format": args.get("load_format", "auto"),
        "started": started,
        "error": None if started else log.get("error", "the engine never reported its KV cache"),
        "weights_gib_per_gpu": log.get("weights_gib_per_gpu"),
        "kv_available_gib": log.get("kv_available_gib"),
        "kv_tokens": kv_tokens,
        "max_concurrency": log.get("max_concurrency", None if blocks is None else round(blocks / per_request, 2)),
        "cudagraph_gib": log.get("cudagraph_gib", 0.0 if enforce_eager else None),
        "cudagraph_estimate_gib_subtracted_before_kv": log.get("cudagraph_estimate_gib_subtracted_before_kv", 0.0),
        "gpu": gpu.name,
        "gpu_name": gpu.product_label.replace("-", " "),
        "vllm_version": log.get("vllm_version"),
        "memory_profile": {
            key: log.get(key)
            for key in (
                "requested_gib",
                "total_gib_torch",
                "free_gib_at_worker_init",
                "non_kv_cache_total_gib",
                "torch_peak_activation_increase_gib",
                "non_torch_forward_increase_gib",
                "weights_gib",
                "free_gib_after_profiling_total",
            )
        },
        "engine": {
            "model_runner": log.get("model_runner"),
            "kv_block_size": block_size,
            "num_gpu_blocks": blocks,
            "kv_cache_dtype": live.get("kv_cache_dtype") or args.get("kv_cache_dtype", "auto"),
            "max_num_batched_tokens": args.get("max_num_batched_tokens") or log.get("max_num_batched_tokens"),
            "max_num_seqs": args.get("max_num_seqs") or log.get("max_num_seqs"),
        },
        "log": log_path,
    }
    if log.get("cuda_context_gib") is not None:
        record["memory_profile"]["cuda_context_and_comm_gib_at_worker_init"] = log["cuda_context_gib"]
    return record
